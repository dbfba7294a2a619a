"""Attention: the weights of every layer and head, from one forward pass (never one pass per layer or head)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from llm_playground.errors import InputError
from llm_playground.explore.common import check_fits, index, introspectable, labels
from llm_playground.model.base import LanguageModel

# All layers' weights are held at once: layers × heads × T² floats (135M model, 512 tokens: 280 MB).
MAX_TOKENS = 512


@dataclass(frozen=True)
class AttentionMaps:
    ids: list[int]
    tokens: list[str]
    weights: np.ndarray  # (layers, heads, T, T): row = query position, column = key; causal, rows sum to 1

    @property
    def num_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def num_heads(self) -> int:
        return self.weights.shape[1]

    def layer(self, layer: int) -> np.ndarray:
        """(heads, T, T): every head of one layer (negative indices count from the end)."""
        return self.weights[index(layer, self.num_layers, "layer")]

    def head(self, layer: int, head: int) -> np.ndarray:
        return self.layer(layer)[index(head, self.num_heads, "head")]

    def mean(self, layer: int) -> np.ndarray:
        """(T, T): the mean over a layer's heads."""
        return self.layer(layer).mean(axis=0)


def attention(model: LanguageModel, ids: Sequence[int]) -> AttentionMaps:
    if len(ids) > MAX_TOKENS:
        raise InputError(f"attention over {len(ids)} tokens is too large to hold for every layer and head",
                         f"give at most {MAX_TOKENS} tokens")
    check_fits(model, ids)
    full = introspectable(model).forward_full(list(ids), attentions=True, hidden_states=False)
    assert full.attentions is not None
    return AttentionMaps(list(ids), labels(model.tokenizer, ids), full.attentions)


def top_attended(maps: AttentionMaps, matrix: np.ndarray, k: int = 3) -> pd.DataFrame:
    """For each query position, the k keys it attends to most: position, token, attends_to ("tok@pos 0.42")."""
    rows = []
    for query in range(matrix.shape[0]):
        row = matrix[query, : query + 1]
        best = np.argsort(-row, kind="stable")[:k]
        rows.append({"position": query, "token": maps.tokens[query],
                     "attends_to": ", ".join(f"{maps.tokens[j]}@{j} {row[j]:.2f}" for j in best)})
    return pd.DataFrame(rows)
