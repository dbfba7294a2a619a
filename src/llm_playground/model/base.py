"""The `LanguageModel` protocol: token ids in, float32 logits of the last position out.

Everything above the model (the generation loop, function calling, the explorers, the front ends)
speaks only this; every backend implements it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from llm_playground.tokenizer.base import Tokenizer


@dataclass(frozen=True)
class ModelInfo:
    name: str
    backend: str
    architecture: str
    parameters: int
    context_length: int
    vocab_size: int
    dtype: str
    location: str


@dataclass(frozen=True)
class FullForward:
    """Everything one forward pass over a whole text can show (the explorers' raw material)."""

    logits: np.ndarray  # (tokens, vocab) float32
    attentions: np.ndarray | None  # (layers, heads, tokens, tokens); rows sum to 1, zero above the diagonal
    hidden_states: np.ndarray | None  # (layers + 1, tokens, hidden): the embeddings, then each layer's output


def full_forward_from_torch(ids: Sequence[int], context_length: int, run: Any) -> FullForward:
    """The torch decoders' `forward_full`: check the length, run `run(ids_tensor)` -> (logits, attention
    weights per layer, hidden states per layer) on batch 1, and hand back numpy float32 arrays."""
    import torch

    from llm_playground.errors import ContextOverflow

    if len(ids) > context_length:
        raise ContextOverflow(f"{len(ids)} tokens do not fit the context of {context_length}",
                              "use a shorter text or a sliding window")
    logits, weights, states = run(torch.as_tensor(np.asarray(ids, dtype=np.int64)).unsqueeze(0))
    return FullForward(
        logits=logits[0].float().cpu().numpy(),
        attentions=torch.stack(weights)[:, 0].float().cpu().numpy() if weights else None,
        hidden_states=torch.stack(states)[:, 0].float().cpu().numpy() if states else None,
    )


@runtime_checkable
class KVCache(Protocol):
    @property
    def length(self) -> int:
        """How many positions the cache holds (the next token's position)."""
        ...

    def copy(self) -> KVCache: ...


# Each backend has its own cache class and its `forward` takes only that one: the protocol is generic in it,
# and a bare `LanguageModel` (what callers write) is `LanguageModel[Any]`, any backend with its cache.
CacheT = TypeVar("CacheT", bound=KVCache)


@runtime_checkable
class LanguageModel(Protocol[CacheT]):
    # Read-only for callers (properties), so a backend may hold a more specific tokenizer (HFTokenizer).
    @property
    def info(self) -> ModelInfo: ...

    @property
    def tokenizer(self) -> Tokenizer: ...

    @property
    def context_length(self) -> int: ...

    def new_cache(self, capacity: int | None = None) -> CacheT:
        """An empty cache; `capacity` is a hint of how many positions the caller will need."""
        ...

    def forward(self, ids: Sequence[int], cache: CacheT) -> np.ndarray:
        """Append `ids` to the cache and return the float32 logits of the last position, shape (vocab,)."""
        ...


# Optional capabilities: declared protocols, checked with `isinstance`, never found with `getattr` (a wrapper
# that hid one, or a proxy that seemed to have one, shipped two bugs). Wrappers forward exactly the wrapped
# model's (model/guarded.py).


@runtime_checkable
class Introspectable(Protocol):
    """Backends that can show their insides implement this beside `LanguageModel`."""

    def forward_full(self, ids: Sequence[int], attentions: bool = True, hidden_states: bool = True
                     ) -> FullForward: ...


@runtime_checkable
class Batchable(Protocol):
    """Backends that can decode several sequences in one pass (continuous batching) implement this too."""

    def forward_batch(self, ids: Sequence[int], caches: Sequence[KVCache]) -> np.ndarray:
        """Append ids[i] to caches[i] for every i; the logits of those positions, (len(ids), vocab)."""
        ...


@runtime_checkable
class Scorable(Protocol):
    """Backends that return the logits of every new position in one pass (scoring texts, not only the next token)."""

    def forward_all(self, ids: Sequence[int], cache: KVCache) -> np.ndarray:
        """Like `forward`, but the logits of every new position, (len(ids), vocab)."""
        ...


@runtime_checkable
class Embeddable(Protocol):
    """Backends that expose their input embedding table."""

    def embedding_matrix(self) -> np.ndarray:
        """(vocab, hidden) float32, read-only."""
        ...


# What a wrapper may forward: the capability protocols by the method that declares each.
CAPABILITIES: dict[str, type] = {"forward_full": Introspectable, "forward_all": Scorable,
                                 "forward_batch": Batchable, "embedding_matrix": Embeddable}


def capabilities(model: object) -> frozenset[str]:
    """The optional capabilities `model` has (names of `CAPABILITIES`)."""
    return frozenset(name for name, protocol in CAPABILITIES.items() if isinstance(model, protocol))


@runtime_checkable
class Wrapper(Protocol):
    """A model standing in for another (a lock, a batcher): `model` is the wrapped one, and `sibling(other)`
    puts another model (the same weights with an adapter merged in) behind the same guard."""

    model: LanguageModel

    def sibling(self, model: LanguageModel) -> LanguageModel: ...


def unwrapped(model: LanguageModel) -> LanguageModel:
    """The backend under any wrappers (for what only the backend has: its config, its class)."""
    while isinstance(model, Wrapper):
        model = model.model
    return model


def get_logits_from_input_ids(model: LanguageModel, ids: Sequence[int]) -> list[float]:
    """The course's smallest model API: full recompute, no cache (what the KV cache is measured against)."""
    return model.forward(list(ids), model.new_cache(len(ids))).tolist()


def describe_dtype(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")
