"""Tokenizers: the `Tokenizer` protocol and its implementations."""

from __future__ import annotations

from pathlib import Path

from llm_playground.errors import ModelLoadError
from llm_playground.tokenizer.base import Tokenizer
from llm_playground.tokenizer.hf import HFTokenizer
from llm_playground.tokenizer.sentencepiece import SentencePieceTokenizer, train_sentencepiece


def load_tokenizer(path: Path | str) -> Tokenizer:
    """A SentencePiece `.model` file, or a directory with a Hugging Face `tokenizer.json`."""
    path = Path(path)
    if path.suffix == ".model":
        return SentencePieceTokenizer(path)
    if path.is_dir():
        return HFTokenizer(path)
    raise ModelLoadError(f"{path} is not a tokenizer",
                         "pass a SentencePiece .model file or a directory with tokenizer.json")


__all__ = ["HFTokenizer", "SentencePieceTokenizer", "Tokenizer", "load_tokenizer", "train_sentencepiece"]
