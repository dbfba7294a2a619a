"""Continuous batching: several requests decode together, one forward pass for all their next tokens.

Each running request keeps its own thread, its own `Generation` (the one loop, unchanged) and its own
KV cache; `BatchingModel` stands in for the model, and its single-token `forward` calls from all those
threads are gathered into one `forward_batch` of the underlying model. Decoding on a CPU is bound by
reading the weights, so a step for 16 sequences costs far less than 16 steps. Prompts (prefill) run
as they come, beside the batches. Requests join and leave between steps.

Batched matrix products sum in another order than one-row ones, so logits differ in the last bits
(measured: up to 1e-4 on logits of magnitude ~25) and a sampled token can flip where two choices are
that close: with batching, a seeded request is not bit-for-bit what it is alone. A request decoding
alone takes the plain `forward`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llm_playground.model.base import Batchable, KVCache, LanguageModel
from llm_playground.model.guarded import ForwardsCapabilities, GuardedModel

# How long a step waits for a decoding request that is still sampling its previous token (the usual
# trigger is that every decoding request has arrived; this only bounds a straggler's cost).
MAX_WAIT_S = 0.01


def supports_batching(model: LanguageModel) -> bool:
    return isinstance(model, Batchable)


@dataclass
class _Call:
    token: int
    cache: KVCache
    done: threading.Event = field(default_factory=threading.Event)
    logits: np.ndarray | None = None
    error: BaseException | None = None


class BatchingModel(ForwardsCapabilities):
    """A `LanguageModel` whose single-token forwards, from any number of threads, run batched. Its other
    capabilities are the model's (introspection, scoring: not batched, counted as work elsewhere)."""

    def __init__(self, model: LanguageModel, max_batch: int = 16) -> None:
        if not isinstance(model, Batchable):
            raise TypeError(f"{model.info.backend} models cannot decode in batches")
        self.model, self.max_batch = model, max_batch
        self.batch_forward = model.forward_batch
        self.info, self.tokenizer = model.info, model.tokenizer
        self._cond = threading.Condition()
        self._pending: list[_Call] = []
        self._members = 0  # requests in a generation (between `member()` enter and exit)
        self._elsewhere = 0  # members busy with something other than batched decoding (a prefill, a call)
        self.steps = 0
        self.batched_tokens = 0
        # The same model with each pass counted as work outside the batches: scoring, introspection.
        self._outside = GuardedModel(model, self.working_elsewhere)
        self._thread = threading.Thread(target=self._run, name="llmp-batcher", daemon=True)
        self._thread.start()

    @property
    def context_length(self) -> int:
        return self.model.context_length

    def new_cache(self, capacity: int | None = None) -> KVCache:
        return self.model.new_cache(capacity)

    def _capability(self, name: str, *args: Any) -> Any:
        return self._outside._capability(name, *args)

    def sibling(self, model: LanguageModel) -> LanguageModel:
        """Another model a member decodes with (the base model plus a function-call adapter): one sequence,
        not batched, its passes counted as work elsewhere so that batch steps do not wait for its tokens."""
        return self if model is self.model else self._outside.sibling(model)

    @contextlib.contextmanager
    def working_elsewhere(self) -> Iterator[None]:
        with self._cond:
            self._elsewhere += 1
        try:
            yield
        finally:
            with self._cond:
                self._elsewhere -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def member(self) -> Iterator[None]:
        """Around one request's work: the batcher expects this thread's tokens while it is inside."""
        with self._cond:
            self._members += 1
        try:
            yield
        finally:
            with self._cond:
                self._members -= 1
                self._cond.notify_all()

    def forward(self, ids: Sequence[int], cache: KVCache) -> np.ndarray:
        if len(ids) != 1:
            with self.working_elsewhere():
                return self.model.forward(ids, cache)
        call = _Call(int(ids[0]), cache)
        with self._cond:
            alone = not self._pending and self._members - self._elsewhere <= 1
            if not alone:
                self._pending.append(call)
                self._cond.notify_all()
        if alone:  # nobody to batch with: no hand-off to the batcher's thread, and the plain forward's numbers
            return self.model.forward(ids, cache)
        call.done.wait()
        if call.error is not None:
            raise call.error
        assert call.logits is not None
        return call.logits

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._cond.wait()
                deadline = time.monotonic() + MAX_WAIT_S
                while len(self._pending) < min(self.max_batch, self._members - self._elsewhere):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch:]
            try:
                logits = self.batch_forward([c.token for c in batch], [c.cache for c in batch])
                for call, row in zip(batch, logits, strict=True):
                    call.logits = row
            except BaseException as exc:  # each waiting request gets the error instead of hanging
                for call in batch:
                    call.error = exc
            self.steps += 1
            self.batched_tokens += len(batch)
            for call in batch:
                call.done.set()
