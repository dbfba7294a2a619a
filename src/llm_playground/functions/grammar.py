"""Grammar-constrained decoding with llguidance: DESIGN.md's `Constraint` as a token mask.

llguidance computes, at each step, the bitmask of tokens that keep the output inside the grammar
(~20–150 µs on a 49k vocabulary); we unpack it into a boolean mask for the loop, which sets every other
logit to -inf before sampling. When the grammar leaves exactly one continuation, `forced()` returns its
tokens and the loop appends them without sampling.
"""

from __future__ import annotations

import json
import time
import weakref
from dataclasses import dataclass, field
from typing import Any

import llguidance
import numpy as np
from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

from llm_playground.errors import InputError
from llm_playground.tokenizer.base import Tokenizer

# Compact JSON (the course's output is compact), no free whitespace the model could wander into.
COMPACT = {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}

_LLG_TOKENIZERS: weakref.WeakKeyDictionary[Any, llguidance.LLTokenizer] = weakref.WeakKeyDictionary()


def llg_tokenizer(tokenizer: Tokenizer) -> llguidance.LLTokenizer:
    """llguidance's view of our tokenizer (built once per tokenizer: ~0.2 s for 49k tokens)."""
    cached = _LLG_TOKENIZERS.get(tokenizer)
    if cached is None:
        cached = _build_llg_tokenizer(tokenizer)
        _LLG_TOKENIZERS[tokenizer] = cached
    return cached


def _build_llg_tokenizer(tokenizer: Tokenizer) -> llguidance.LLTokenizer:
    from llm_playground.tokenizer.hf import HFTokenizer
    from llm_playground.tokenizer.sentencepiece import SentencePieceTokenizer

    eos = sorted(tokenizer.stop_ids) or None
    if isinstance(tokenizer, HFTokenizer):
        return llguidance.LLTokenizer(tokenizer.rust_tokenizer.to_str(), eos_token=eos)
    if isinstance(tokenizer, SentencePieceTokenizer):
        return llguidance.LLTokenizer(_SentencePieceWrapper(tokenizer), eos_token=eos)  # type: ignore[arg-type]
    raise InputError(f"grammar-constrained decoding does not support {type(tokenizer).__name__}",
                     "use a model with a Hugging Face or SentencePiece tokenizer")


class _SentencePieceWrapper:
    """The duck-typed tokenizer llguidance accepts: every token's bytes, and an encode function."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.eos_token_id = tokenizer.eos_id
        self.bos_token_id = tokenizer.bos_id
        sp = tokenizer._sp
        self.special_token_ids = [i for i in range(sp.GetPieceSize()) if sp.IsControl(i) or sp.IsUnknown(i)]
        self.tokens = [_piece_bytes(sp, i) for i in range(sp.GetPieceSize())]

    def __call__(self, text: str | bytes) -> list[int]:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        return self._tokenizer.encode(text)


def _piece_bytes(sp: Any, token_id: int) -> bytes:
    piece = sp.IdToPiece(token_id)
    if sp.IsByte(token_id):
        return bytes([int(piece[3:5], 16)])
    if sp.IsControl(token_id) or sp.IsUnknown(token_id):
        return b""
    return piece.replace("\u2581", " ").encode("utf-8")


def schema_grammar(schema: dict[str, Any]) -> str:
    """An llguidance grammar for a JSON Schema, written compactly."""
    schema = {**schema, "x-guidance": {**COMPACT, **schema.get("x-guidance", {})}}
    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema))
    except (ValueError, TypeError) as exc:
        raise InputError(f"the JSON schema cannot be turned into a grammar ({exc})", "fix the schema") from None
    ok, message = _validate(grammar)
    if not ok:
        raise InputError(f"the JSON schema is not supported: {message}", "simplify the schema")
    return grammar


def _validate(grammar: str) -> tuple[bool, str]:
    try:
        llguidance.LLMatcher.validate_grammar(grammar)
    except Exception as exc:  # llguidance reports problems as plain exceptions
        return False, str(exc).splitlines()[0]
    return True, ""


# JSON numbers the grammar lets through: at most this many digits before the exponent, and this many in
# it. JSON Schema cannot say it, and without it `"minimum": 0, "maximum": 20` ran to 256 tokens of
# `11.1999999…` (a float64 holds 15-17 significant digits anyway).
MAX_DIGITS, MAX_EXPONENT_DIGITS = 15, 3
_NUMBER_CHARS = frozenset("0123456789.eE+-")
_NUMBER_TABLES: weakref.WeakKeyDictionary[Any, tuple[np.ndarray, np.ndarray, list[str]]] = (
    weakref.WeakKeyDictionary())


def _number_tables(tokenizer: Tokenizer) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Per token: the digits at its start that would continue a number, whether it starts with '.', its text."""
    cached = _NUMBER_TABLES.get(tokenizer)
    if cached is None:
        llg = llg_tokenizer(tokenizer)
        texts = [llg.decode_bytes([t]).decode("utf-8", errors="replace") for t in range(llg.vocab_size)]
        digits = np.zeros(len(texts), dtype=np.int32)
        dots = np.zeros(len(texts), dtype=bool)
        for t, text in enumerate(texts):
            if text[:1] in _NUMBER_CHARS:
                lead = len(text) - len(text.lstrip("0123456789.eE+-"))
                digits[t] = sum(c.isdigit() for c in text[:lead])
                dots[t] = text[0] == "."
        cached = (digits, dots, texts)
        _NUMBER_TABLES[tokenizer] = cached
    return cached


class NumberBound:
    """Follows the JSON text as it is written and, inside a number, masks the tokens that would give it
    more than MAX_DIGITS digits (or MAX_EXPONENT_DIGITS in its exponent). Digits in strings are free."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.digits, self.dots, self.texts = _number_tables(tokenizer)
        self.in_string = self.escaped = False
        self.part: str | None = None  # None (not in a number), "mantissa" or "exponent"
        self.count = 0

    def advance(self, token_id: int) -> None:
        if 0 <= token_id < len(self.texts):
            for char in self.texts[token_id]:
                self._char(char)

    def _char(self, char: str) -> None:
        if self.in_string:
            self.in_string = self.escaped or char != '"'
            self.escaped = not self.escaped and char == "\\"
            return
        if char == '"':
            self.in_string, self.part = True, None
        elif char.isdigit() or (char == "-" and self.part is None):
            if self.part is None:
                self.part, self.count = "mantissa", 0
            self.count += char.isdigit()
        elif char in "eE" and self.part == "mantissa":
            self.part, self.count = "exponent", 0
        elif not (char == "." or (char in "+-" and self.part == "exponent")) or self.part is None:
            self.part = None

    def restrict(self, mask: np.ndarray) -> np.ndarray:
        if self.part is None:
            return mask
        limit = MAX_DIGITS if self.part == "mantissa" else MAX_EXPONENT_DIGITS
        n = min(len(mask), len(self.digits))
        over = self.digits[:n] > limit - self.count
        if self.count >= limit and self.part == "mantissa":
            over |= self.dots[:n]  # "123…5." would need one more digit
        bounded = mask.copy()
        bounded[:n] &= ~over
        return bounded if bounded.any() else mask  # never a dead end: the grammar's own mask wins


@dataclass
class ConstraintStats:
    """What the grammar did during one generation (per step: allowed tokens; totals: time, forced)."""

    allowed_counts: list[int] = field(default_factory=list)
    mask_ms: float = 0.0
    forced_tokens: int = 0
    invalid_tokens: int = 0


class GrammarConstraint:
    """The `Constraint` of generate/constraint.py, backed by one llguidance matcher."""

    def __init__(self, tokenizer: Tokenizer, grammar: str, vocab_size: int | None = None,
                 bound_numbers: bool = False) -> None:
        self._llg = llg_tokenizer(tokenizer)
        self.numbers = NumberBound(tokenizer) if bound_numbers else None
        self.matcher = llguidance.LLMatcher(self._llg, grammar, log_level=0)
        if self.matcher.is_error():
            raise InputError(f"the grammar is invalid: {self.matcher.get_error()}", "fix the grammar or schema")
        self.vocab_size = vocab_size or self._llg.vocab_size
        self._bitmask = allocate_token_bitmask(1, self._llg.vocab_size)
        self._mask = np.zeros(self.vocab_size, dtype=bool)
        self.stats = ConstraintStats()

    def allowed(self, ids: np.ndarray) -> np.ndarray | None:
        start = time.perf_counter()
        fill_next_token_bitmask(self.matcher, self._bitmask)
        bits = np.unpackbits(self._bitmask.view(np.uint8), bitorder="little")
        n = min(self.vocab_size, self._llg.vocab_size)
        np.copyto(self._mask[:n], bits[:n].view(bool))
        mask = self._mask if self.numbers is None else self.numbers.restrict(self._mask)
        self.stats.mask_ms += (time.perf_counter() - start) * 1000
        self.stats.allowed_counts.append(int(np.count_nonzero(mask)))
        return mask

    def forced(self) -> list[int]:
        if self.matcher.is_stopped():
            return []
        tokens = self.matcher.compute_ff_tokens()
        self.stats.forced_tokens += len(tokens)
        return tokens

    def advance(self, token_id: int) -> None:
        if not self.matcher.consume_token(int(token_id)):
            self.stats.invalid_tokens += 1
        if self.numbers is not None:
            self.numbers.advance(int(token_id))

    def is_finished(self) -> bool:
        return self.matcher.is_stopped()



def json_schema_constraint(tokenizer: Tokenizer, schema: dict[str, Any], vocab_size: int | None = None
                           ) -> GrammarConstraint:
    """Decode exactly one JSON value valid against `schema` (`{"type": "object"}` for any object), its
    numbers bounded in digits."""
    return GrammarConstraint(tokenizer, schema_grammar(schema), vocab_size, bound_numbers=True)
