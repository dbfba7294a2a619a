"""Perplexity: how surprised the model is by each token of a text, over a sliding window past the context.

Position 0 has nothing before it, so tokens 1..T-1 are scored: NLL_i = -log p(token_i | tokens before it,
within the window), perplexity = exp(mean NLL). A window of `window` tokens moves by `stride`; each
window scores only the tokens no earlier window scored, so every token is scored once, with at least
`window - stride` tokens of context once the text is longer than the window.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from llm_playground.errors import InputError, InvalidParameter
from llm_playground.explore.common import encode, labels
from llm_playground.generate.score import token_logprobs
from llm_playground.model.base import Introspectable, LanguageModel

# The logits of a whole window are held at once: window × vocab floats (512 × 49,152 ≈ 100 MB).
DEFAULT_WINDOW = 512


@dataclass(frozen=True)
class Perplexity:
    table: pd.DataFrame  # position, id, token, nll (nats), bits, probability — for positions 1..T-1
    first_token: str  # position 0, never predicted
    tokens: int
    mean_nll: float
    perplexity: float
    bits_per_token: float
    window: int
    stride: int
    windows: int


def windows(length: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, first target) of each window: it scores targets first..end-1 from ids[begin:end]."""
    spans, begin, scored_to = [], 0, 1
    while scored_to < length:
        end = min(begin + window, length)
        spans.append((begin, end, scored_to))
        scored_to, begin = end, begin + stride
    return spans


def _window_logits(model: LanguageModel, ids: list[int]) -> np.ndarray:
    """(len(ids), vocab) logits of every position: one pass where the backend allows, else token by token."""
    if isinstance(model, Introspectable):
        return model.forward_full(ids, attentions=False, hidden_states=False).logits
    cache = model.new_cache(len(ids))
    return np.stack([model.forward([token], cache) for token in ids])


def perplexity(model: LanguageModel, ids: Sequence[int], window: int | None = None,
               stride: int | None = None) -> Perplexity:
    ids = list(ids)
    if len(ids) < 2:
        raise InputError("perplexity needs at least 2 tokens (the first one is never predicted)",
                         "give a longer text")
    window = window or min(model.context_length, DEFAULT_WINDOW)
    stride = stride or max(1, window // 2)
    if not 2 <= window <= model.context_length:
        raise InvalidParameter(f"window must be between 2 and the context length {model.context_length} "
                               f"(got {window})", f"use --window {min(model.context_length, DEFAULT_WINDOW)}")
    if not 1 <= stride < window:
        raise InvalidParameter(f"stride must be at least 1 and less than the window {window} (got {stride})",
                               f"use --stride {window // 2}")
    spans = windows(len(ids), window, stride)
    nll = np.empty(len(ids) - 1)
    for begin, end, first in spans:
        logits = _window_logits(model, ids[begin:end])
        # Row r of the window predicts ids[begin + r + 1]; targets first..end-1 are rows first-1-begin..end-2-begin.
        rows = logits[first - 1 - begin: end - 1 - begin]
        nll[first - 1: end - 1] = -token_logprobs(rows, ids[first:end])
    table = pd.DataFrame({"position": range(1, len(ids)), "id": ids[1:], "token": labels(model.tokenizer, ids[1:]),
                          "nll": nll, "bits": nll / math.log(2), "probability": np.exp(-nll)})
    mean = float(nll.mean())
    return Perplexity(table, labels(model.tokenizer, ids[:1])[0], len(ids), mean, math.exp(mean),
                      mean / math.log(2), window, stride, len(spans))


def compare(model: LanguageModel, texts: Mapping[str, str], window: int | None = None,
            stride: int | None = None) -> pd.DataFrame:
    """One row per text: label, tokens, mean_nll, perplexity, bits_per_token."""
    rows = []
    for name, text in texts.items():
        result = perplexity(model, encode(model.tokenizer, text), window, stride)
        rows.append({"label": name, "tokens": result.tokens, "mean_nll": result.mean_nll,
                     "perplexity": result.perplexity, "bits_per_token": result.bits_per_token})
    return pd.DataFrame(rows)


NATURAL = ("The sun rose slowly over the quiet village, and the baker opened his shop to sell fresh bread to "
           "the people walking to work.")


def example_texts(seed: int = 0) -> dict[str, str]:
    """A natural sentence, the same words shuffled (seeded), and a repetitive text — models find the
    repetition least surprising of the three once it has seen it twice."""
    words = NATURAL.rstrip(".").split()
    random.Random(seed).shuffle(words)
    return {"natural": NATURAL, "shuffled": " ".join(words) + ".",
            "repetitive": " ".join(["the bread"] * 12) + "."}
