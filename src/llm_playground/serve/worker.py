"""Worker threads per model: requests queue for them (bounded), run (one at a time, or several decoding
together through continuous batching), and stream back.

Generation is CPU-bound, so it runs in threads and the event loop stays free for HTTP. Each job's
items cross to the event loop through an `asyncio.Queue`; a job whose client went away is flagged
`cancelled` and its work stops at the next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from llm_playground.errors import PlaygroundError
from llm_playground.model.base import LanguageModel
from llm_playground.serve.batching import BatchingModel, supports_batching
from llm_playground.serve.protocol import ApiError

log = logging.getLogger(__name__)

Emit = Callable[[Any], None]
Work = Callable[[Emit, threading.Event], Any]  # runs in the worker thread; returns the job's result


@dataclass
class Requeue:
    """What a job's work returns to go back to the end of the queue, to run `work` when its turn comes."""

    work: Work


@dataclass
class Job:
    work: Work
    loop: asyncio.AbstractEventLoop
    items: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    enqueued: float = field(default_factory=time.perf_counter)
    started: float | None = None
    result: Any = None

    def cancel(self) -> None:
        self.cancelled.set()

    def emit(self, item: Any) -> None:
        """From the worker thread: one item of the work's output, to the event loop."""
        self._send("item", item)

    def _send(self, kind: str, value: Any) -> None:
        self.loop.call_soon_threadsafe(self.items.put_nowait, (kind, value))

    async def stream(self) -> AsyncIterator[Any]:
        """The items the work emits, in order; ends with its result in `result`, or raises its error."""
        while True:
            kind, value = await self.items.get()
            if kind == "item":
                yield value
            elif kind == "done":
                self.result = value
                return
            else:
                raise value

    @property
    def queue_ms(self) -> float:
        return ((self.started or time.perf_counter()) - self.enqueued) * 1000


class ModelWorker:
    """Runs requests for one model: `slots` at a time (continuous batching when the model can batch, else 1);
    `max_waiting` more may wait, and one beyond that is refused with 429."""

    def __init__(self, name: str, model: LanguageModel, max_waiting: int = 64,
                 on_depth: Callable[[str, int], None] | None = None, max_batch: int = 1) -> None:
        self.name, self.max_waiting = name, max_waiting
        self.batching = BatchingModel(model, max_batch) if max_batch > 1 and supports_batching(model) else None
        self.model: LanguageModel = self.batching or model
        self.slots = max_batch if self.batching else 1
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._depth = 0  # waiting + running
        self._on_depth = on_depth or (lambda name, depth: None)
        self._threads = [threading.Thread(target=self._run, name=f"llmp-worker-{name}-{i}", daemon=True)
                         for i in range(self.slots)]
        for thread in self._threads:
            thread.start()

    @property
    def depth(self) -> int:
        return self._depth

    def submit(self, work: Work) -> Job:
        with self._lock:
            if self._depth >= self.slots + self.max_waiting:
                raise ApiError(429, f"the queue for model {self.name!r} is full ({self.max_waiting} waiting)",
                               type="rate_limit_error", code="queue_full", headers={"Retry-After": "1"})
            self._depth += 1
            self._on_depth(self.name, self._depth)
        job = Job(work, asyncio.get_running_loop())
        self._jobs.put(job)
        return job

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            job.started = job.started or time.perf_counter()
            requeued = False
            try:
                if job.cancelled.is_set():
                    job._send("error", asyncio.CancelledError())
                else:
                    with self.batching.member() if self.batching else contextlib.nullcontext():
                        result = job.work(job.emit, job.cancelled)
                    if isinstance(result, Requeue):  # its next part waits behind the jobs queued meanwhile
                        job.work, requeued = result.work, True
                        self._jobs.put(job)
                    else:
                        job._send("done", result)
            except BaseException as exc:  # the error belongs to the request, not to the worker
                if not isinstance(exc, PlaygroundError | asyncio.CancelledError):  # ApiError is one too
                    log.exception("request failed in model worker %s", self.name)
                job._send("error", exc)
            finally:
                if not requeued:
                    with self._lock:
                        self._depth -= 1
                        self._on_depth(self.name, self._depth)
