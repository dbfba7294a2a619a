"""`POST /v1/embeddings`: OpenAI's embeddings endpoint over the bundled sentence embedder (all-MiniLM-L6-v2).

`input` is a string or a list of strings (token arrays are refused: our ids are not OpenAI's);
`encoding_format` float or base64 (little-endian float32, as OpenAI's client decodes it). Texts longer than
the model's 256 tokens are truncated, as sentence-transformers does; `usage` counts what was embedded.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any, Literal

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, ValidationError

from llm_playground.knowledge.embedder import MINILM, Embedder, load_embedder
from llm_playground.serve.protocol import ApiError, decode_body, refuse_lone_surrogates
from llm_playground.serve.state import ServerState, Tracker

MAX_INPUTS = 2048  # OpenAI's own limit of inputs a request
ALIASES = {MINILM, "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


def parse_embedding_request(raw: bytes) -> EmbeddingRequest:
    body = decode_body(raw)  # the chat endpoints' checks: nesting, NaN/Infinity, then lone surrogates
    refuse_lone_surrogates(body)
    if isinstance(body.get("input"), list) and body["input"] and not all(isinstance(x, str) for x in body["input"]):
        raise ApiError(400, "input: give a string or a list of strings (token arrays are not supported)",
                       param="input")
    try:
        request = EmbeddingRequest.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "body"
        if error["type"] == "extra_forbidden":
            raise ApiError(400, f"unrecognized request argument: {field}", param=field) from None
        raise ApiError(400, f"{field}: {error['msg'].removeprefix('Value error, ')}", param=field) from None
    texts = [request.input] if isinstance(request.input, str) else request.input
    if not texts:
        raise ApiError(400, "input: give at least one string", param="input")
    if len(texts) > MAX_INPUTS:
        raise ApiError(400, f"input: at most {MAX_INPUTS} strings a request, got {len(texts)}", param="input")
    if any(not t.strip() for t in texts):
        raise ApiError(400, "input: empty strings cannot be embedded", param="input")
    if request.model not in ALIASES:
        raise ApiError(404, f"the embedding model {request.model!r} does not exist; this server embeds with "
                       f"{MINILM}", code="model_not_found", param="model")
    if request.dimensions is not None and request.dimensions != 384:
        raise ApiError(400, f"dimensions: {MINILM} makes 384-dimensional vectors, not {request.dimensions}",
                       param="dimensions")
    return request


def embed_response(request: EmbeddingRequest, embedder: Embedder) -> dict[str, Any]:
    texts = [request.input] if isinstance(request.input, str) else request.input
    vectors = embedder.embed(texts)  # (n, 384) float32, unit rows
    # [CLS] + text + [SEP], truncated at the model's length: what the model really read
    tokens = sum(min(embedder.count_tokens(t) + 2, embedder.max_tokens) for t in texts)
    data = [{"object": "embedding", "index": i,
             "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if request.encoding_format == "base64"
             else [float(x) for x in v]} for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": request.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def register(app: FastAPI, state: ServerState) -> None:
    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> dict[str, Any]:
        tracker = Tracker(state, "/v1/embeddings")
        try:
            state.authorize(request)
            body = parse_embedding_request(await state.read_body(request))
            tracker.model = body.model
            payload = await asyncio.to_thread(lambda: embed_response(body, load_embedder()))
        except ApiError as exc:
            tracker.finish(exc.status, error=exc.message)
            raise
        tracker.finish(200, usage={"prompt_tokens": payload["usage"]["prompt_tokens"]})
        return payload
