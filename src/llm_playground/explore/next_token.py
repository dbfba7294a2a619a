"""Next token: after a prompt, the most likely tokens with their logits and probabilities, and the entropy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from llm_playground.errors import InvalidParameter
from llm_playground.explore.common import check_fits, label
from llm_playground.generate import processors as P
from llm_playground.model.base import LanguageModel
from llm_playground.tokenizer.base import Tokenizer


@dataclass(frozen=True)
class NextToken:
    prompt_tokens: int
    temperature: float
    table: pd.DataFrame  # rank, id, token, text, logit, probability (after temperature)
    entropy_nats: float
    entropy_bits: float
    top_mass: float  # how much probability the table covers


def probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax after temperature, exactly as the generation loop scales logits (0 = greedy, one-hot)."""
    if temperature < 0:
        raise InvalidParameter(f"temperature must be ≥ 0 (got {temperature})", "use 0 for greedy, 1 for the raw model")
    if temperature == 0:
        probs = np.zeros(logits.shape, dtype=np.float64)
        probs[int(np.argmax(logits))] = 1.0
        return probs
    scaled = logits.astype(np.float32, copy=True)
    if temperature != 1.0:
        scaled = P.Temperature(temperature)(np.empty(0, np.int64), scaled)
    return P.softmax(scaled)


def entropy(probs: np.ndarray) -> float:
    """Shannon entropy in nats (zero-probability tokens contribute nothing)."""
    nonzero = probs[probs > 0]
    return float(-(nonzero * np.log(nonzero)).sum())


def top_table(tokenizer: Tokenizer, logits: np.ndarray, probs: np.ndarray, n: int) -> pd.DataFrame:
    n = min(n, probs.size)
    top = np.argpartition(-probs, n - 1)[:n]
    top = top[np.lexsort((-logits[top], -probs[top]))]  # by probability, ties by logit
    return pd.DataFrame({
        "rank": range(1, n + 1),
        "id": top.astype(int),
        "token": [tokenizer.token_text(int(i)) for i in top],
        "text": [label(tokenizer, int(i)) for i in top],
        "logit": logits[top].astype(float),
        "probability": probs[top].astype(float),
    })


def from_logits(tokenizer: Tokenizer, logits: np.ndarray, prompt_tokens: int, top_n: int = 10,
                temperature: float = 1.0) -> NextToken:
    if top_n < 1:
        raise InvalidParameter(f"top must be at least 1 (got {top_n})", "use --top 10, for example")
    probs = probabilities(logits, temperature)
    table = top_table(tokenizer, logits, probs, top_n)
    nats = entropy(probs)
    return NextToken(prompt_tokens, temperature, table, nats, nats / np.log(2), float(table["probability"].sum()))


def next_token(model: LanguageModel, ids: Sequence[int], top_n: int = 10, temperature: float = 1.0) -> NextToken:
    """One forward pass over the prompt; the last position's logits."""
    check_fits(model, ids)
    logits = model.forward(list(ids), model.new_cache(len(ids)))
    return from_logits(model.tokenizer, logits, len(ids), top_n, temperature)
