"""A model whose forward passes each run inside a guard; every other attribute is the wrapped model's.

Front ends that share one model between threads wrap it: the web app in a lock (`ui/shared.py`), the API
server's batcher in its count of work done outside its batches (`serve/batching.py`). Function calls
decode with the base model plus an adapter (`functions/adapter.py`), a second model over mostly the same
tensors: `sibling` puts it behind the same guard, so the wrapper's promise holds for it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from llm_playground.model.base import LanguageModel

Guard = Callable[[], contextlib.AbstractContextManager[Any]]


class GuardedModel:
    def __init__(self, model: LanguageModel, guard: Guard) -> None:
        self.model = model
        self._guard = guard
        self._siblings: dict[int, GuardedModel] = {}

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.model, name)  # raises AttributeError for what the backend lacks
        if name.startswith("forward") and callable(value):  # forward, forward_all, forward_full, ...
            return self._guarded(value)
        return value

    def _guarded(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._guard():
                return method(*args, **kwargs)

        return call

    @property
    def context_length(self) -> int:
        return self.model.context_length

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
