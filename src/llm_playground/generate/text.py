"""Turning a stream of token ids into a stream of text: never half a character, never part of a stop string."""

from __future__ import annotations

from collections.abc import Sequence

from llm_playground.tokenizer.base import Tokenizer

REPLACEMENT = "\ufffd"
# Tokens of the prompt decoded with the output: tokenizers that drop a leading space when decoding a
# sequence from its start (SentencePiece) then keep it.
_CONTEXT_TOKENS = 4


class IncrementalDetokenizer:
    """Text deltas for appended ids, holding back bytes that do not form a complete character yet.

    Decoding each token alone would split multi-byte UTF-8 characters (emoji, accents in byte-level BPE)
    and glyphs made of several tokens; decoding a short window and emitting only what became stable
    does not.
    """

    def __init__(self, tokenizer: Tokenizer, prompt_ids: Sequence[int]) -> None:
        self.tokenizer = tokenizer
        self.ids = list(prompt_ids[-_CONTEXT_TOKENS:])
        self.prefix_offset = 0
        self.read_offset = len(self.ids)

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        return self._delta(final=False)

    def flush(self) -> str:
        """What is still held back at the end (an incomplete character becomes U+FFFD)."""
        return self._delta(final=True)

    def _delta(self, final: bool) -> str:
        prefix = self.tokenizer.decode(self.ids[self.prefix_offset:self.read_offset])
        text = self.tokenizer.decode(self.ids[self.prefix_offset:])
        if len(text) <= len(prefix) or (text.endswith(REPLACEMENT) and not final):
            return ""
        self.prefix_offset, self.read_offset = self.read_offset, len(self.ids)
        return text[len(prefix):]


class StopMatcher:
    """Finds stop strings across token boundaries; holds back text that may be the start of one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
        self.pending = ""

    def push(self, delta: str) -> tuple[str, bool]:
        """(text safe to emit, whether a stop string was reached)."""
        self.pending += delta
        if not self.stops:
            emit, self.pending = self.pending, ""
            return emit, False
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            emit, self.pending = self.pending[: min(hits)], ""
            return emit, True
        hold = max((_overlap(self.pending, s) for s in self.stops), default=0)
        cut = len(self.pending) - hold
        emit, self.pending = self.pending[:cut], self.pending[cut:]
        return emit, False

    def flush(self) -> str:
        emit, self.pending = self.pending, ""
        return emit


def _overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `stop`."""
    for size in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:size]):
            return size
    return 0
