"""`llmp tokenizer train`: a SentencePiece tokenizer trained on the workspace's corpus."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from llm_playground.data.corpus import read_documents, require_corpus
from llm_playground.tokenizer import SentencePieceTokenizer, train_sentencepiece
from llm_playground.workspace import Workspace


@dataclass(frozen=True)
class TrainedTokenizer:
    tokenizer: SentencePieceTokenizer
    seconds: float
    sample: str  # a line of the corpus, to show how the new vocabulary splits it


def train_tokenizer(workspace: Workspace, vocab_size: int = 4096, model_type: str = "bpe",
                    special_tokens: Sequence[str] = ()) -> TrainedTokenizer:
    corpus = require_corpus(workspace)
    started = time.perf_counter()
    tokenizer = train_sentencepiece(corpus, workspace.tokenizer_path, vocab_size=vocab_size, model_type=model_type,
                                    special_tokens=special_tokens)
    return TrainedTokenizer(tokenizer, time.perf_counter() - started, sample_line(workspace))


def sample_line(workspace: Workspace, min_chars: int = 30, max_chars: int = 100) -> str:
    """The first line of the corpus that looks like prose (long, mostly lower case), cut at a word boundary."""
    fallback = ""
    for count, document in enumerate(read_documents(workspace.corpus_path)):
        for line in document.split("\n"):
            fallback = fallback or line
            letters = [c for c in line if c.isalpha()]
            if len(line) >= min_chars and sum(c.islower() for c in letters) >= 0.8 * len(letters):
                return line if len(line) <= max_chars else line[:max_chars].rsplit(" ", 1)[0]
        if count >= 10:
            break
    return fallback[:max_chars]
