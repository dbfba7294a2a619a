"""How likely is each continuation of a prompt? (log-probabilities summed over its tokens)

Used to choose among a few known answers (which function to call) by likelihood instead of by the
first differing token alone. The prompt is fed once; each candidate continues a copy of its cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llm_playground.model.base import KVCache, LanguageModel, Scorable


def continuation_logprobs(model: LanguageModel, prompt_ids: Sequence[int],
                          continuations: Sequence[Sequence[int]]) -> list[float]:
    """log P(continuation | prompt) for each continuation (token ids), in order.

    Tokens shared by every continuation at its start are fed with the prompt and left out of the
    scores: they add the same amount to each, so the ranking (and the softmax over candidates) is exact.
    """
    shared = _common_prefix(continuations)
    cache = model.new_cache(len(prompt_ids) + max(len(c) for c in continuations))
    logits = model.forward([*prompt_ids, *shared], cache)
    return [_tail_logprob(model, cache, logits, list(c[len(shared):])) for c in continuations]


def _tail_logprob(model: LanguageModel, cache: KVCache, logits: np.ndarray, tail: list[int]) -> float:
    if not tail:
        return 0.0
    total = float(token_logprobs(logits[None], tail[:1])[0])
    if len(tail) == 1:
        return total
    rows = _every_logits(model, tail[:-1], cache.copy())  # row i predicts tail[i + 1]
    return total + float(token_logprobs(rows, tail[1:]).sum())


def _every_logits(model: LanguageModel, ids: Sequence[int], cache: KVCache) -> np.ndarray:
    """(len(ids), vocab): the logits after each of `ids`, fed onto `cache`; one pass where the model is Scorable."""
    if isinstance(model, Scorable):
        return np.asarray(model.forward_all(ids, cache))
    return np.stack([model.forward([token], cache) for token in ids])


def _log_normalizer(rows: np.ndarray) -> np.ndarray:
    """log sum exp over the last axis, the max subtracted first: (..., vocab) float64 -> (...)."""
    top = rows.max(axis=-1)
    return top + np.log(np.exp(rows - top[..., None]).sum(axis=-1))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """log-probabilities over the last axis, in float64: (..., vocab) -> (..., vocab)."""
    rows = np.asarray(logits, dtype=np.float64)
    return rows - _log_normalizer(rows)[..., None]


def token_logprobs(logits: np.ndarray, targets: Sequence[int] | np.ndarray) -> np.ndarray:
    """log P(targets[i]) under row i of `logits` (rows, vocab), in float64: (rows,). The one log-softmax of
    scoring and perplexity (the whole (rows, vocab) log-softmax is never materialised)."""
    rows = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    if rows.ndim != 2 or len(targets) != len(rows):
        raise ValueError(f"token_logprobs: logits {rows.shape} need one row per target ({len(targets)})")
    return rows[np.arange(len(targets)), targets] - _log_normalizer(rows)


def _common_prefix(sequences: Sequence[Sequence[int]]) -> list[int]:
    if len(sequences) < 2:
        return []
    prefix: list[int] = []
    for column in zip(*sequences, strict=False):
        if any(token != column[0] for token in column):
            break
        prefix.append(column[0])
    # Keep one token of each candidate out of the prefix so every candidate has a tail to score.
    shortest = min(len(s) for s in sequences)
    return prefix[: max(0, min(len(prefix), shortest - 1))]


class PrefixScorer:
    """log P(continuation | prefix) for many continuations of one fixed prefix, fed once and cached."""

    def __init__(self, model: LanguageModel, prefix_ids: Sequence[int], capacity: int = 512) -> None:
        self.model = model
        self._cache = model.new_cache(len(prefix_ids) + capacity)
        self._logits = model.forward(list(prefix_ids), self._cache)

    def logprob(self, continuation: Sequence[int]) -> float:
        return _tail_logprob(self.model, self._cache, self._logits, list(continuation))


def prompt_token_logprobs(model: LanguageModel, ids: Sequence[int], top: int = 0
                          ) -> list[tuple[float | None, list[tuple[int, float]]]]:
    """Per prompt token: (log P(token | the tokens before it), the `top` likeliest tokens there with theirs).
    The first token has no context: (None, []). What evaluation harnesses score with (echo, max_tokens 0)."""
    ids = list(ids)
    if not ids:
        return []
    scored: list[tuple[float | None, list[tuple[int, float]]]] = [(None, [])]
    if len(ids) == 1:
        return scored
    rows = _every_logits(model, ids[:-1], model.new_cache(len(ids)))  # row i predicts ids[i + 1]
    for row, token in zip(rows, ids[1:], strict=True):
        logprobs = log_softmax(row)  # a row at a time: a long prompt's rows in float64 would be gigabytes
        best = [int(t) for t in np.argsort(-logprobs)[:top]] if top else []
        scored.append((float(logprobs[token]), [(int(t), float(logprobs[t])) for t in best]))
    return scored
