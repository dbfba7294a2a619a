"""What one server holds: its models' workers, the API key, limits, metrics and the request log."""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from llm_playground.model.base import LanguageModel
from llm_playground.serve.metrics import Metrics
from llm_playground.serve.protocol import ApiError
from llm_playground.serve.requestlog import LogRecord, RequestLog
from llm_playground.serve.worker import ModelWorker

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_WAITING = 64
DEFAULT_MAX_CHOICES = 128  # prompts × n in one request: more would hold a worker for minutes


class ServerState:
    def __init__(self, models: dict[str, LanguageModel], *, api_key: str | None = None,
                 max_waiting: int = DEFAULT_MAX_WAITING, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 request_log: RequestLog | None = None, max_batch: int = 1,
                 max_choices: int = DEFAULT_MAX_CHOICES) -> None:
        self.metrics = Metrics()
        self.workers = {name: ModelWorker(name, model, max_waiting, self.metrics.set_depth, max_batch)
                        for name, model in models.items()}
        for name in self.workers:
            self.metrics.set_depth(name, 0)
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.max_choices = max_choices
        self.request_log = request_log
        self.created = int(time.time())
        # One thread writes the log, in order, off the event loop.
        self._log_writer = ThreadPoolExecutor(1, thread_name_prefix="llmp-log")

    def worker(self, name: str) -> ModelWorker:
        try:
            return self.workers[name]
        except KeyError:
            raise ApiError(404, f"the model {name!r} does not exist; this server has: {', '.join(self.workers)}",
                           code="model_not_found", param="model") from None

    def authorize(self, request: Request) -> None:
        if self.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise ApiError(401, "no API key given: send the header 'Authorization: Bearer KEY'",
                           code="invalid_api_key")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            raise ApiError(401, "incorrect API key", code="invalid_api_key")

    async def read_body(self, request: Request) -> bytes:
        limit = self.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, f"the body has {int(declared)} bytes; the limit is {limit}", code="body_too_large")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the body exceeds the limit of {limit} bytes", code="body_too_large")
            chunks.append(chunk)
        return b"".join(chunks)

    def record(self, record: LogRecord, endpoint_label: str, seconds: float) -> None:
        """Count the request in the metrics and write it to the log (in the background)."""
        # Clients choose the model string: only served names become label values, or the series are unbounded.
        model = record.model if record.model in self.workers else "unknown"
        self.metrics.requests.labels(endpoint_label, model, str(record.status)).inc()
        self.metrics.latency.labels(endpoint_label, model).observe(seconds)
        if record.prompt_tokens or record.completion_tokens:
            self.metrics.tokens.labels(model, "prompt").inc(record.prompt_tokens)
            self.metrics.tokens.labels(model, "completion").inc(record.completion_tokens)
        if self.request_log is not None:
            self._log_writer.submit(self._write, record)

    def _write(self, record: LogRecord) -> None:
        try:
            assert self.request_log is not None
            self.request_log.record(record)
        except Exception:  # a full disk must not take the API down with it
            log.exception("cannot write the request log")

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self._log_writer.shutdown(wait=True)
        if self.request_log is not None:
            self.request_log.close()


@dataclass
class Tracker:
    """One request's facts as they become known; `finish` turns them into metrics and a log record."""

    state: ServerState
    endpoint: str
    started: float = field(default_factory=time.perf_counter)
    model: str = ""
    messages: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    queue_ms: float | None = None
    ttft_ms: float | None = None
    done: bool = False
    body: dict[str, Any] = field(default_factory=dict)
    # (output, usage) of what was generated so far: what a request cut by its client keeps in the log.
    partial: Callable[[], tuple[Any, dict[str, int]]] | None = None

    def requested(self, body: dict[str, Any]) -> None:
        """The decoded body, before validation: enough to log (and count) a request that is refused."""
        self.body = body
        model = body.get("model")
        self.model = model if isinstance(model, str) else ""
        self.messages = body.get("messages", body.get("prompt"))
        self.params = {k: v for k, v in body.items() if k not in ("model", "messages", "prompt")}

    def refused(self, error: ApiError) -> None:
        self.finish(error.status, error=error.message, param=error.param, code=error.code or error.type)

    def first_token(self) -> None:
        if self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000
            if self.model in self.state.workers:
                self.state.metrics.ttft.labels(self.model).observe(self.ttft_ms / 1000)

    def finish(self, status: int, output: Any = None, usage: dict[str, int] | None = None,
               finish_reason: str | None = None, error: str | None = None, param: str | None = None,
               code: str | None = None) -> None:
        if self.done:
            return
        self.done = True
        seconds = time.perf_counter() - self.started
        if self.queue_ms is not None and self.model in self.state.workers:
            self.state.metrics.queue_wait.labels(self.model).observe(self.queue_ms / 1000)
        if output is None and self.partial is not None:
            try:
                output, usage = self.partial()
            except Exception:  # the log must still get its row
                log.exception("cannot collect a partial answer")
        usage = usage or {}
        record = LogRecord(self.endpoint, self.model or "?", status, self.messages, self.params, output,
                           finish_reason, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
                           self.queue_ms, self.ttft_ms, seconds * 1000, error, param=param, code=code)
        self.state.record(record, self.endpoint, seconds)
