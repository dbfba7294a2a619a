"""A model shared by every browser session of one web-app process.

Streamlit runs each session's script in its own thread, so two tabs may call one model at once, each
with its own KV cache. The native backend is not safe for that: it grows its rotary-embedding tables
lazily, and one thread may read the new cosine table with the old sine table. The transformers
backend promises nothing either. A lock around each forward pass makes any backend safe and costs
nothing here: decoding is memory-bound, so two concurrent passes would not run faster than two in a
row, and holding the lock per step (not per answer) lets two chats advance token by token together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from llm_playground.model.base import LanguageModel


class SharedModel:
    """A `LanguageModel` (and `Introspectable` when the backend is) whose `forward*` passes take a lock.

    Every other attribute is the wrapped model's, so analyses that read `info`, `tokenizer`, `config`
    or `embedding_matrix` see the backend itself.
    """

    def __init__(self, model: LanguageModel, lock: threading.Lock | None = None) -> None:
        self.model = model
        self.lock = lock or threading.Lock()
        self._siblings: dict[int, SharedModel] = {}

    def sibling(self, model: LanguageModel) -> SharedModel:
        """`model` behind this one's lock, made once: function calls decode with the base model's weights
        plus an adapter (functions/adapter.py), which share tensors, and the CPU, with it."""
        if model is self.model:
            return self
        twin = self._siblings.get(id(model))
        if twin is None or twin.model is not model:
            twin = self._siblings[id(model)] = SharedModel(model, self.lock)
        return twin

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.model, name)  # raises AttributeError for what the backend lacks
        if name.startswith("forward") and callable(value):  # forward, forward_all, forward_full, ...
            return self._locked(value)
        return value

    def _locked(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                return method(*args, **kwargs)

        return call

    @property
    def context_length(self) -> int:
        return self.model.context_length
