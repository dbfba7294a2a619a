"""Helpers every analysis shares: checking inputs, token labels, and turning results into JSON."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from llm_playground.errors import ContextOverflow, InputError, InvalidParameter
from llm_playground.model.base import Introspectable, LanguageModel
from llm_playground.tokenizer.base import Tokenizer


def encode(tokenizer: Tokenizer, text: str) -> list[int]:
    if not text or not text.strip():
        raise InputError("the text is empty", "give some text to look at")
    ids = tokenizer.encode(text)
    if not ids:
        raise InputError("the text gives no tokens", "give some text to look at")
    return ids


def check_fits(model: LanguageModel, ids: Sequence[int],
               fix: str = "give a shorter text (`llmp explore perplexity` windows long ones)") -> None:
    """Refuse a text longer than the context window (only perplexity windows long texts)."""
    if len(ids) > model.context_length:
        raise ContextOverflow(f"the text has {len(ids)} tokens but the context holds {model.context_length}", fix)


def introspectable(model: LanguageModel) -> Introspectable:
    """The model, if its backend can show attention weights and hidden states."""
    if not isinstance(model, Introspectable):
        raise InputError(f"the {model.info.backend} backend cannot show attention weights or hidden states",
                         "use --backend native or transformers")
    return model


def index(value: int, size: int, what: str) -> int:
    """A Python-style index (negative counts from the end), checked, as a non-negative int."""
    if not -size <= value < size:
        raise InvalidParameter(f"{what} {value} does not exist (there are {size})",
                               f"use 0 to {size - 1}, or -1 for the last")
    return value % size


def label(tokenizer: Tokenizer, token_id: int) -> str:
    """A token as readable text: decoded, with spaces and newlines made visible."""
    text = tokenizer.decode([token_id])
    return text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍") or "∅"


def labels(tokenizer: Tokenizer, ids: Sequence[int]) -> list[str]:
    return [label(tokenizer, i) for i in ids]


def to_jsonable(value: Any) -> Any:
    """Dataclasses, DataFrames and numpy values as plain JSON types (NaN and infinities become null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, pd.DataFrame):
        return [to_jsonable(row) for row in value.to_dict(orient="records")]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
