"""Logits processors: each one idea, each `(ids, logits) -> logits` on numpy float32 arrays.

Applied in this order (the loop composes `penalty_processors`, the constraint, then `sampling_processors`):
1. repetition penalty  (over prompt + generated tokens, as in transformers)
2. frequency and presence penalties  (over generated tokens, as in OpenAI's API)
3. the constraint's mask  (grammar; applied by the loop, between 2 and 4)
4. temperature
5. top-k, 6. top-p, 7. min-p  (truncation: removed tokens get -inf)
Penalties come first so that they shape the distribution truncation then cuts; truncation never removes
the most likely token, so some token always survives.

Per-token bookkeeping stays in numpy: tiny torch ops on busy threads have cost milliseconds here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from llm_playground.generate.params import SamplingParams

NEG_INF = np.float32(-np.inf)


class LogitsProcessor(Protocol):
    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray: ...


class RepetitionPenalty:
    """Divide positive logits (multiply negative ones) of tokens already in the context by `penalty`."""

    def __init__(self, penalty: float) -> None:
        self.penalty = np.float32(penalty)

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        seen = np.unique(ids)
        values = logits[seen]
        logits[seen] = np.where(values > 0, values / self.penalty, values * self.penalty)
        return logits


class FrequencyPresencePenalty:
    """Subtract `frequency × count + presence × (count > 0)` for each token generated so far."""

    def __init__(self, frequency: float, presence: float, prompt_length: int) -> None:
        self.frequency, self.presence, self.prompt_length = np.float32(frequency), np.float32(presence), prompt_length

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        generated = ids[self.prompt_length:]
        if generated.size:
            tokens, counts = np.unique(generated, return_counts=True)
            logits[tokens] -= self.frequency * counts.astype(np.float32) + self.presence
        return logits


class Temperature:
    """Divide logits by the temperature, shifted so the top logit is 0 (softmax and truncation ignore shifts).

    The shift and the capped factor keep a tiny temperature (1e-40) or a huge logit from overflowing to
    +inf and NaN: the top token stays at 0 and the others can only fall towards -inf.
    """

    def __init__(self, temperature: float) -> None:
        self.inverse = np.float32(min(1.0 / temperature, float(np.finfo(np.float32).max)))

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # overflow here means -inf, which is what it should be
            logits -= logits.max()
            logits *= self.inverse
        return logits


class TopK:
    """Keep the k highest logits (and any tied with the k-th)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        if self.k >= logits.size:
            return logits
        kth = np.partition(logits, logits.size - self.k)[logits.size - self.k]
        logits[logits < kth] = NEG_INF
        return logits


class TopP:
    """Keep the most likely tokens until their probability reaches p (the top token always stays)."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        probs = softmax(logits)
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = int(np.searchsorted(cumulative, self.p * cumulative[-1])) + 1
        logits[order[keep:]] = NEG_INF
        return logits


class MinP:
    """Drop tokens whose probability is below `min_p` × the top probability."""

    def __init__(self, min_p: float) -> None:
        self.log_min_p = np.float32(np.log(min_p))

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        # p_i < min_p * p_max  <=>  logit_i < logit_max + log(min_p): no softmax needed.
        logits[logits < logits.max() + self.log_min_p] = NEG_INF
        return logits


def penalty_processors(params: SamplingParams, prompt_length: int) -> list[LogitsProcessor]:
    """Steps 1–2: applied before the constraint mask, in greedy and sampled decoding alike."""
    chain: list[LogitsProcessor] = []
    if params.repetition_penalty != 1.0:
        chain.append(RepetitionPenalty(params.repetition_penalty))
    if params.frequency_penalty or params.presence_penalty:
        chain.append(FrequencyPresencePenalty(params.frequency_penalty, params.presence_penalty, prompt_length))
    return chain


def sampling_processors(params: SamplingParams) -> tuple[list[LogitsProcessor], list[LogitsProcessor]]:
    """Steps 4–7 as (temperature, truncation); empty for greedy decoding."""
    if params.is_greedy:
        return [], []
    scale: list[LogitsProcessor] = [] if params.temperature == 1.0 else [Temperature(params.temperature)]
    truncate: list[LogitsProcessor] = []
    if params.top_k:
        truncate.append(TopK(params.top_k))
    if params.top_p < 1.0:
        truncate.append(TopP(params.top_p))
    if params.min_p > 0.0:
        truncate.append(MinP(params.min_p))
    return scale, truncate


def apply(chain: Sequence[LogitsProcessor], ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
    for processor in chain:
        logits = processor(ids, logits)
    return logits


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(), dtype=np.float64)
    return shifted / shifted.sum()
