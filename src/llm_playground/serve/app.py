"""The OpenAI-compatible HTTP API: `/v1/models`, `/v1/chat/completions`, `/v1/completions`, `/health`, `/metrics`.

Every failure leaves as OpenAI's error body (`{"error": {"message", "type", "param", "code"}}`) with
its status: 400 bad parameters, 401 key, 404 model, 413 body, 429 queue full, 500 our bug.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_playground.errors import PlaygroundError
from llm_playground.model.base import LanguageModel
from llm_playground.serve import streams
from llm_playground.serve.planning import Plan, plan_chat, plan_completion
from llm_playground.serve.protocol import (
    ApiError,
    ChatRequest,
    CompletionRequest,
    api_error,
    decode_body,
    sniff_model,
    validate_request,
)
from llm_playground.serve.requestlog import RequestLog
from llm_playground.serve.state import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CHOICES,
    DEFAULT_MAX_WAITING,
    ServerState,
    Tracker,
)
from llm_playground.serve.streams import CLIENT_CLOSED
from llm_playground.serve.worker import Job

log = logging.getLogger(__name__)


class CancellingStream(StreamingResponse):
    """A streaming response that cancels its job however it ends: finished, failed, or the client left."""

    def __init__(self, content: AsyncIterator[str], on_close: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


def create_app(models: dict[str, LanguageModel], *, api_key: str | None = None,
               max_waiting: int = DEFAULT_MAX_WAITING, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               request_log: RequestLog | None = None, max_batch: int = 1,
               max_choices: int = DEFAULT_MAX_CHOICES) -> FastAPI:
    """`max_batch` > 1: up to that many requests per model decode together (continuous batching), where the
    model's backend can (`forward_batch`: the native one); otherwise one at a time. `max_choices` caps
    prompts × n of one request (more are refused with 400)."""
    state = ServerState(models, api_key=api_key, max_waiting=max_waiting, max_body_bytes=max_body_bytes,
                        request_log=request_log, max_batch=max_batch, max_choices=max_choices)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(state.close)

    app = FastAPI(title="LLM Playground API", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.llmp = state

    @app.exception_handler(PlaygroundError)
    async def _playground_error(request: Request, exc: PlaygroundError) -> JSONResponse:
        error = api_error(exc)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = ApiError(exc.status_code, str(exc.detail), code="not_found" if exc.status_code == 404 else None)
        return JSONResponse(error.body(), status_code=exc.status_code)

    # Not an `exception_handler(Exception)`: Starlette re-raises after such a handler, so the server
    # printed a second traceback and dropped the keep-alive connection unannounced.
    app.add_middleware(CatchAll)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        state.authorize(request)  # the schema tells what the server can do: behind the key like /v1
        return JSONResponse(app.openapi())

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": {name: {"queue_depth": w.depth} for name, w in state.workers.items()}}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        state.authorize(request)
        return {"object": "list", "data": [_model_card(name, state) for name in state.workers]}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str, request: Request) -> dict[str, Any]:
        state.authorize(request)
        state.worker(name)
        return _model_card(name, state)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await _complete(request, state, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await _complete(request, state, "text")

    from llm_playground.serve import embeddings

    embeddings.register(app, state)  # POST /v1/embeddings

    return app


class CatchAll:
    """Anything unexpected becomes one logged 500 with a generic message (never the exception's text,
    which may hold request data) and `Connection: close`, since the connection's state is unknown."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("unexpected error on %s", scope.get("path"))
            if started:  # the status line is out: only closing the connection can tell the client
                return
            error = ApiError(500, "internal error: the server failed on this request; it was logged",
                             type="server_error")
            response = JSONResponse(error.body(), status_code=500, headers={"Connection": "close"})
            await response(scope, receive, send)


def _model_card(name: str, state: ServerState) -> dict[str, Any]:
    info = state.workers[name].model.info
    return {"id": name, "object": "model", "created": state.created, "owned_by": "llm-playground",
            "context_length": info.context_length, "parameters": info.parameters, "backend": info.backend}


async def _complete(request: Request, state: ServerState, kind: str) -> Response:
    tracker = Tracker(state, "/v1/chat/completions" if kind == "chat" else "/v1/completions")
    try:
        state.authorize(request)
        raw = await state.read_body(request)
        tracker.model = sniff_model(raw)
        tracker.requested(decode_body(raw))  # logged as asked, even if refused below
        body: ChatRequest | CompletionRequest = validate_request(
            ChatRequest if kind == "chat" else CompletionRequest, tracker.body)
        tracker.params = body.model_dump(exclude={"model", "messages", "prompt"}, exclude_none=True, warnings=False)
        worker = state.worker(body.model)
        plan = plan_chat(body, worker.model, state.max_choices) if isinstance(body, ChatRequest) else plan_completion(
            body, worker.model, state.max_choices)
        job = worker.submit(plan.run)
    except PlaygroundError as exc:
        error = api_error(exc)
        tracker.refused(error)
        raise error from None
    except Exception as exc:  # our bug: logged here, answered by CatchAll
        tracker.finish(500, error=f"internal error ({type(exc).__name__})")
        raise
    if body.stream:
        chunks = streams.stream(kind, body, plan, job, worker.model.tokenizer, tracker)

        def closed() -> None:  # also when the client left before the first chunk (the stream never started)
            job.cancel()
            tracker.finish(CLIENT_CLOSED, error="the client disconnected")

        return CancellingStream(chunks, closed)
    return await _respond(request, kind, body, plan, job, worker.model.tokenizer, tracker)


async def _respond(request: Request, kind: str, body: Any, plan: Plan, job: Job, tokenizer: Any,
                   tracker: Tracker) -> Response:
    """Wait for the whole answer, cancelling the job if the client disconnects meanwhile."""
    task = asyncio.ensure_future(streams.collect(kind, body, plan, job, tokenizer, tracker))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.25)
            if done:
                break
            if await request.is_disconnected():
                job.cancel()
                task.cancel()
                tracker.finish(CLIENT_CLOSED, error="the client disconnected")
                return Response(status_code=CLIENT_CLOSED)
        payload = task.result()
    except PlaygroundError as exc:
        error = api_error(exc)
        tracker.refused(error)
        raise error from None
    except Exception as exc:
        tracker.finish(500, error=f"internal error ({type(exc).__name__})")
        raise
    finally:
        job.cancel()
    return JSONResponse(payload)
