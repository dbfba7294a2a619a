"""Sections → chunks that fit the embedder: windows of tokens with overlap, cut at paragraph or sentence
ends where one is near, each keeping its character span in the section's text."""

from __future__ import annotations

from dataclasses import dataclass, field

from llm_playground.errors import InvalidParameter
from llm_playground.knowledge.embedder import Embedder
from llm_playground.knowledge.readers import Section

DEFAULT_CHUNK_TOKENS = 256
DEFAULT_OVERLAP = 32


@dataclass
class Chunk:
    text: str
    title: str
    position: int  # the chunk's index in its file
    start: int  # character span in the section's text
    end: int
    metadata: dict = field(default_factory=dict)


def chunk_sections(sections: list[Section], embedder: Embedder, chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
                   overlap: int = DEFAULT_OVERLAP) -> list[Chunk]:
    # [CLS] and [SEP] take two of the embedder's positions; a chunk never exceeds what it embeds whole.
    size = min(chunk_tokens, embedder.max_tokens - 2)
    check_chunking(size, overlap)
    chunks: list[Chunk] = []
    for section in sections:
        for start, end in _windows(section.text, embedder.token_spans(section.text), size, overlap):
            text = section.text[start:end].strip()
            if text:
                lead = len(section.text[start:end]) - len(section.text[start:end].lstrip())
                chunks.append(Chunk(text, section.title, len(chunks), start + lead, start + lead + len(text),
                                    dict(section.metadata)))
    return chunks


def check_chunking(size: int, overlap: int) -> None:
    if size < 8 or not 0 <= overlap < size // 2:
        raise InvalidParameter(f"chunks of {size} tokens with an overlap of {overlap} do not work",
                               "use at least 8 tokens a chunk and an overlap under half of it")


def _windows(text: str, spans: list[tuple[int, int]], size: int, overlap: int) -> list[tuple[int, int]]:
    """Character spans of token windows of at most `size` tokens, `overlap` tokens shared between neighbours."""
    if not spans:
        return []
    windows, first = [], 0
    while first < len(spans):
        last = min(first + size, len(spans))  # exclusive
        if last < len(spans):
            last = _good_cut(text, spans, first + size // 2, last)
        windows.append((spans[first][0], spans[last - 1][1] if last >= len(spans) else spans[last][0]))
        if last >= len(spans):
            break
        first = max(last - overlap, first + 1)
    return windows


def _good_cut(text: str, spans: list[tuple[int, int]], lowest: int, last: int) -> int:
    """The latest token index in [lowest, last] where a paragraph (else a sentence) ends before it."""
    for marks in (("\n\n",), (". ", "? ", "! ", ".\n", "?\n", "!\n", "\n")):
        for cut in range(last, lowest, -1):
            gap = text[spans[cut - 1][1] - 1: spans[cut][0] + 1]
            if any(mark in gap for mark in marks):
                return cut
    return last
