"""A model whose forward passes each run inside a guard, with exactly the wrapped model's capabilities.

Front ends that share one model between threads wrap it: the web app in a lock (`ui/shared.py`), the API
server's batcher in its count of work done outside its batches (`serve/batching.py`). Function calls
decode with the base model plus an adapter (`functions/adapter.py`), a second model over mostly the same
tensors: `sibling` puts it behind the same guard, so the wrapper's promise holds for it too.

The optional capabilities (`model/base.py`: `forward_full`, `forward_all`, `forward_batch`,
`embedding_matrix`) are forwarded explicitly: a wrapper's class is made per set of capabilities, so
`isinstance(wrapper, Scorable)` is true exactly when it is for the wrapped model. No `__getattr__`: a
wrapper neither hides a capability nor seems to have one the model lacks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from llm_playground.model.base import CAPABILITIES, KVCache, LanguageModel, capabilities

Guard = Callable[[], contextlib.AbstractContextManager[Any]]


class _Introspectable:
    def forward_full(self, ids: Sequence[int], attentions: bool = True, hidden_states: bool = True) -> Any:
        return self._capability("forward_full", ids, attentions, hidden_states)  # type: ignore[attr-defined]


class _Scorable:
    def forward_all(self, ids: Sequence[int], cache: KVCache) -> np.ndarray:
        return self._capability("forward_all", ids, cache)  # type: ignore[attr-defined]


class _Batchable:
    def forward_batch(self, ids: Sequence[int], caches: Sequence[KVCache]) -> np.ndarray:
        return self._capability("forward_batch", ids, caches)  # type: ignore[attr-defined]


class _Embeddable:
    def embedding_matrix(self) -> np.ndarray:
        return self._capability("embedding_matrix")  # type: ignore[attr-defined]


_MIXINS: dict[str, type] = {"forward_full": _Introspectable, "forward_all": _Scorable,
                            "forward_batch": _Batchable, "embedding_matrix": _Embeddable}
assert _MIXINS.keys() == CAPABILITIES.keys()


class ForwardsCapabilities:
    """Base of the wrappers: `Cls(model, ...)` is an instance of `Cls` plus one mixin per capability of
    `model`, each calling `self._capability(name, *args)` (which the wrapper defines)."""

    _classes: ClassVar[dict[tuple[type, frozenset[str]], type]] = {}
    passes: ClassVar[frozenset[str]] = frozenset({"forward_full", "forward_all", "forward_batch"})  # guarded

    def __new__(cls, model: LanguageModel, *args: Any, **kwargs: Any) -> Any:
        names = capabilities(model)
        key = (cls, names)
        made = ForwardsCapabilities._classes.get(key)
        if made is None:
            mixins = tuple(_MIXINS[name] for name in CAPABILITIES if name in names)
            made = type(cls.__name__, (cls, *mixins), {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
            ForwardsCapabilities._classes[key] = made
        return object.__new__(made)

    def _capability(self, name: str, *args: Any) -> Any:
        raise NotImplementedError


class GuardedModel(ForwardsCapabilities):
    def __init__(self, model: LanguageModel, guard: Guard) -> None:
        self.model = model
        self.info, self.tokenizer = model.info, model.tokenizer
        self._guard = guard
        self._siblings: dict[int, GuardedModel] = {}

    @property
    def context_length(self) -> int:
        return self.model.context_length

    def new_cache(self, capacity: int | None = None) -> KVCache:
        return self.model.new_cache(capacity)

    def forward(self, ids: Sequence[int], cache: KVCache) -> np.ndarray:
        with self._guard():
            return self.model.forward(ids, cache)

    def _capability(self, name: str, *args: Any) -> Any:
        method = getattr(self.model, name)  # one of `capabilities(self.model)`: declared, not searched for
        if name not in self.passes:
            return method(*args)
        with self._guard():
            return method(*args)

    def sibling(self, model: LanguageModel) -> GuardedModel:
        """`model` behind this one's guard, made once per model."""
        if model is self.model:
            return self
        twin = self._siblings.get(id(model))
        if twin is None or twin.model is not model:
            twin = self._siblings[id(model)] = self._wrap(model)
        return twin

    def _wrap(self, model: LanguageModel) -> GuardedModel:
        return GuardedModel(model, self._guard)
