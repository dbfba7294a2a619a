"""A model shared by every browser session of one web-app process.

Streamlit runs each session's script in its own thread, so two tabs may call one model at once, each
with its own KV cache. Our torch backends keep only thread-safe shared state (the rotary tables,
model/attention.py), but the transformers and llama.cpp backends promise nothing, and two torch passes
at once would each get half the CPU threads. A lock around each forward pass makes any backend safe and
costs nothing here: decoding is memory-bound, so two concurrent passes would not run faster than two in a
row, and holding the lock per step (not per answer) lets two chats advance token by token together.
"""

from __future__ import annotations

import threading

from llm_playground.model.base import LanguageModel
from llm_playground.model.guarded import GuardedModel


class SharedModel(GuardedModel):
    """A `LanguageModel` whose `forward*` passes take a lock, with exactly the backend's capabilities
    (`Introspectable`, `Scorable`, ... when the backend is; model/guarded.py). What only the backend has
    (its config) is read through `model.base.unwrapped`. Function calls get the model with its adapter
    behind the same lock (`sibling`).
    """

    def __init__(self, model: LanguageModel, lock: threading.Lock | None = None) -> None:
        self.lock = lock or threading.Lock()
        super().__init__(model, lambda: self.lock)

    def _wrap(self, model: LanguageModel) -> SharedModel:
        return SharedModel(model, self.lock)
