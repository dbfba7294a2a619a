"""Tokens: how a tokenizer splits a text, its counts and token lengths, and two tokenizers side by side."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from llm_playground.explore.common import encode, label
from llm_playground.tokenizer.base import Tokenizer


@dataclass(frozen=True)
class TokenSummary:
    tokens: int
    words: int
    characters: int
    tokens_per_word: float
    characters_per_token: float


@dataclass(frozen=True)
class TokenAnalysis:
    text: str
    table: pd.DataFrame  # position, id, token (the vocabulary's spelling), text (decoded), length (characters)
    summary: TokenSummary
    histogram: pd.DataFrame  # length, count: every length from 1 to the longest, zeros included


def analyze(tokenizer: Tokenizer, text: str) -> TokenAnalysis:
    ids = encode(tokenizer, text)
    table = pd.DataFrame({
        "position": range(len(ids)),
        "id": ids,
        "token": [tokenizer.token_text(i) for i in ids],
        "text": [label(tokenizer, i) for i in ids],
        "length": [len(tokenizer.decode([i])) for i in ids],
    })
    words = len(text.split())
    summary = TokenSummary(tokens=len(ids), words=words, characters=len(text),
                           tokens_per_word=round(len(ids) / max(words, 1), 3),
                           characters_per_token=round(len(text) / len(ids), 3))
    return TokenAnalysis(text, table, summary, length_histogram(table))


def length_histogram(table: pd.DataFrame) -> pd.DataFrame:
    counts = table["length"].value_counts()
    lengths = range(1, int(table["length"].max()) + 1) if len(table) else range(0)
    return pd.DataFrame({"length": list(lengths), "count": [int(counts.get(n, 0)) for n in lengths]})


@dataclass(frozen=True)
class TokenizerComparison:
    text: str
    summary: pd.DataFrame  # one row per tokenizer: name, vocab_size, tokens, tokens_per_word, characters_per_token
    analyses: dict[str, TokenAnalysis]


def compare(text: str, tokenizers: Mapping[str, Tokenizer]) -> TokenizerComparison:
    analyses = {name: analyze(tok, text) for name, tok in tokenizers.items()}
    rows = [{"name": name, "vocab_size": tokenizers[name].vocab_size, "tokens": a.summary.tokens,
             "tokens_per_word": a.summary.tokens_per_word, "characters_per_token": a.summary.characters_per_token}
            for name, a in analyses.items()]
    return TokenizerComparison(text, pd.DataFrame(rows), analyses)


def load_tokenizer(spec: str | Path) -> Tokenizer:
    """A tokenizer by model name or path (a model, one of our GPTs or runs, a SentencePiece `.model`, a directory
    with tokenizer.json), without loading any weights."""
    from llm_playground.model.convert import ensure_converted
    from llm_playground.model.registry import resolve_source
    from llm_playground.tokenizer import load_tokenizer as load_tokenizer_file
    from llm_playground.tokenizer.hf import HFTokenizer

    path = Path(spec).expanduser()
    if path.suffix == ".model":  # the project's own SentencePiece tokenizers (`llmp tokenizer train`)
        return load_tokenizer_file(path)
    if path.is_file() and path.name == "tokenizer.json":
        return HFTokenizer(path.parent)
    if path.is_dir():
        from llm_playground.model.gpt_model import gpt_tokenizer  # imports torch: only for directories

        if (tokenizer := gpt_tokenizer(path)) is not None:
            return tokenizer
        if (path / "tokenizer.json").is_file():
            return HFTokenizer(path)
    name, source = resolve_source(str(spec))
    return HFTokenizer(ensure_converted(source, label=name) if source.suffix == ".gguf" else source)
