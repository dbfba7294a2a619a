"""Embeddings: hidden states of any layer, input-embedding rows for words, and their 2-D projections."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from llm_playground.errors import InputError, InvalidParameter
from llm_playground.explore.common import check_fits, index, introspectable, labels
from llm_playground.model.base import Embeddable, LanguageModel

METHODS = ("pca", "tsne", "umap")
NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
# Below these, the neighbourhood methods have nothing to work with (t-SNE's perplexity and UMAP's
# neighbour count must stay below the number of points).
MIN_POINTS = {"pca": 2, "tsne": 5, "umap": 5}


@dataclass(frozen=True)
class HiddenStates:
    ids: list[int]
    tokens: list[str]
    states: np.ndarray  # (layers + 1, T, hidden): 0 = the input embeddings, then each layer's output

    @property
    def num_layers(self) -> int:
        return self.states.shape[0] - 1

    def layer(self, layer: int) -> np.ndarray:
        """(T, hidden) after `layer` layers (0 = embeddings; negative indices count from the end)."""
        return self.states[index(layer, self.states.shape[0], "layer")]


def hidden_states(model: LanguageModel, ids: Sequence[int]) -> HiddenStates:
    """Every layer's hidden states from one forward pass."""
    check_fits(model, ids)
    full = introspectable(model).forward_full(list(ids), attentions=False, hidden_states=True)
    assert full.hidden_states is not None
    return HiddenStates(list(ids), labels(model.tokenizer, ids), full.hidden_states)


@dataclass(frozen=True)
class WordVectors:
    words: list[str]
    token_counts: list[int]  # a word split into several tokens gets the mean of their rows
    vectors: np.ndarray  # (words, hidden)


def word_embeddings(model: LanguageModel, words: Iterable[str]) -> WordVectors:
    """Rows of the input embedding table, one per word."""
    if not isinstance(model, Embeddable):
        raise InputError(f"the {model.info.backend} backend does not expose its embedding table",
                         "use --backend native (Llama-family models)")
    matrix = model.embedding_matrix()
    words = [w.strip() for w in words if w.strip()]
    if not words:
        raise InputError("the word list is empty", "give words separated by commas")
    rows, counts = [], []
    for word in words:
        # With a leading space, as a word appears inside a sentence (byte-level BPE spells " king" as one token).
        ids = model.tokenizer.encode(" " + word)
        rows.append(matrix[ids].astype(np.float32).mean(axis=0))
        counts.append(len(ids))
    return WordVectors(words, counts, np.stack(rows))


def check_method(method: str, points: int) -> None:
    if method not in METHODS:
        raise InvalidParameter(f"unknown projection {method!r}", f"use one of: {', '.join(METHODS)}")
    if points < MIN_POINTS[method]:
        raise InputError(f"{NAMES[method]} needs at least {MIN_POINTS[method]} points (got {points})",
                         "give a longer text or more words" + ("" if method == "pca" else ", or use --method pca"))


def project(vectors: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """(N, 2) coordinates of N vectors; `InputError` when there are too few points for the method."""
    check_method(method, vectors.shape[0])
    n = vectors.shape[0]
    data = vectors.astype(np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(data)
    if method == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=seed,
                    max_iter=1000).fit_transform(data)
    with warnings.catch_warnings():  # umap warns about numba and spectral init details it then handles
        warnings.simplefilter("ignore")
        import umap

        return umap.UMAP(n_components=2, n_neighbors=min(15, n - 1), random_state=seed,
                         n_jobs=1).fit_transform(data)


def projections(vectors: np.ndarray, point_labels: Sequence[str], methods: Sequence[str] = METHODS,
                seed: int = 0) -> pd.DataFrame:
    """Long format: method, position, label, x, y — one row per point and method."""
    for method in methods:  # check every method before spending time on any
        check_method(method, vectors.shape[0])
    frames = []
    for method in methods:
        xy = project(vectors, method, seed)
        frames.append(pd.DataFrame({"method": NAMES[method], "position": range(len(xy)), "label": list(point_labels),
                                    "x": xy[:, 0].astype(float), "y": xy[:, 1].astype(float)}))
    return pd.concat(frames, ignore_index=True)
