"""A client for any OpenAI-compatible chat endpoint (OpenAI, Ollama, vLLM, llama.cpp's server, ours).

One library class for `llmp chat --provider` and the web app's model picker: a streaming chat method
that yields text deltas, timeouts, and retries with backoff on 429, 5xx and dropped connections
(before the first byte of an answer: a stream is never replayed halfway).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from llm_playground.errors import ProviderError
from llm_playground.generate.chat import ChatReply, ChatStream
from llm_playground.generate.params import SamplingParams
from llm_playground.retry import send_with_retries

_MAX_RETRY_AFTER_S = 30.0


def openai_params(params: SamplingParams) -> dict[str, Any]:
    """Our sampling parameters as OpenAI's; top-k, min-p and repetition penalty (not OpenAI's) only when set,
    for the servers that accept them (vLLM, llama.cpp)."""
    body: dict[str, Any] = {"max_tokens": params.max_new_tokens,
                            "temperature": 0.0 if params.is_greedy else params.temperature}
    defaults = SamplingParams()
    for name in ("top_p", "frequency_penalty", "presence_penalty", "top_k", "min_p", "repetition_penalty"):
        if getattr(params, name) != getattr(defaults, name):
            body[name] = getattr(params, name)
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = list(params.stop)
    return body


class ProviderClient:
    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 120.0,
                 connect_timeout: float = 10.0, max_retries: int = 3, backoff_s: float = 0.5) -> None:
        self.base_url = normalize_base_url(base_url)
        self.max_retries, self.backoff_s = max_retries, backoff_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers,
                                  timeout=httpx.Timeout(timeout, connect=connect_timeout))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def models(self) -> list[str]:
        with contextlib.closing(self._send("GET", "/models")) as response:
            response.read()
            return [entry["id"] for entry in response.json().get("data", [])]

    def embeddings(self, model: str, texts: Sequence[str]) -> list[Any]:
        """`/embeddings`' `data` rows in input order (each `embedding` a list of floats or base64 float32)."""
        body = {"model": model, "input": list(texts), "encoding_format": "base64"}
        with contextlib.closing(self._send("POST", "/embeddings", json=body)) as response:
            try:
                response.read()
                data = response.json()["data"]
                return [row["embedding"] for row in sorted(data, key=lambda row: row["index"])]
            except httpx.HTTPError as exc:
                raise ProviderError(f"the answer from {self.base_url} broke off: {exc}", "try again") from exc
            except (ValueError, KeyError, TypeError) as exc:
                raise ProviderError(f"{self.base_url} answered /embeddings with no list of embeddings "
                                    f"({type(exc).__name__}: {exc})",
                                    "is the URL an OpenAI-compatible endpoint (usually ending in /v1)?") from exc

    def chat(self, model: str, messages: Sequence[dict[str, Any]], **params: Any) -> ChatReply:
        stream = self.stream_chat(model, messages, **params)
        for _ in stream:
            pass
        return stream.reply

    def stream_chat(self, model: str, messages: Sequence[dict[str, Any]], **params: Any) -> ChatStream:
        """Streamed chat: iterate the result for text deltas. `params` are OpenAI's (see `openai_params`)."""
        body = {"model": model, "messages": list(messages), **params, "stream": True,
                "stream_options": {"include_usage": True}}
        reply = ChatReply(model=model)
        return ChatStream(self._deltas(body, reply), reply)

    def _deltas(self, body: dict[str, Any], reply: ChatReply) -> Iterator[str]:
        start = time.perf_counter()
        parts: list[str] = []
        with contextlib.closing(self._send("POST", "/chat/completions", json=body)) as response:
            try:
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    if "error" in event:
                        raise ProviderError(f"{self.base_url}: {_error_message(event)}")
                    reply.usage = event.get("usage") or reply.usage
                    for choice in event.get("choices", []):
                        if choice.get("index", 0) != 0:
                            continue
                        reply.finish_reason = choice.get("finish_reason") or reply.finish_reason
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            reply.chunks += 1
                            reply.ttft_ms = reply.ttft_ms or (time.perf_counter() - start) * 1000
                            parts.append(delta)
                            reply.text = "".join(parts)
                            yield delta
            except httpx.HTTPError as exc:
                raise ProviderError(f"the stream from {self.base_url} broke: {exc}",
                                    "try again; check the server's log") from exc
            except json.JSONDecodeError as exc:
                raise ProviderError(f"{self.base_url} sent an event that is not JSON: {exc}",
                                    "is the URL an OpenAI-compatible endpoint (usually ending in /v1)?") from exc
        reply.total_ms = (time.perf_counter() - start) * 1000

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The streamed response, after retries (the caller closes it); refusals become `ProviderError`."""
        try:
            response = send_with_retries(
                lambda: self._http.send(self._http.build_request(method, path, **kwargs), stream=True),
                retries=self.max_retries, backoff_s=self.backoff_s, what=self.base_url,
                max_retry_after_s=_MAX_RETRY_AFTER_S)
        except httpx.TransportError as exc:
            raise ProviderError(f"cannot reach {self.base_url}: {exc or type(exc).__name__}",
                                "is the server running, and is the URL right?") from exc
        if response.status_code < 400:
            return response
        response.read()
        response.close()
        raise _refusal(self.base_url, response)


def normalize_base_url(url: str) -> str:
    """`http://host:port` means its `/v1`; a URL with a path is taken as given."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProviderError(f"{url!r} is not an http(s) URL", "e.g. --provider http://127.0.0.1:11434/v1")
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path or '/v1'}"


def _error_message(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message"))
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return str(body)[:300]


def _refusal(base_url: str, response: httpx.Response) -> ProviderError:
    try:
        message = _error_message(response.json())
    except ValueError:
        message = response.text[:300] or response.reason_phrase
    status = response.status_code
    fix = {401: "check the API key (--api-key-env names the variable that holds it)",
           403: "check the API key's permissions",
           404: "check the model name (and that the URL ends in /v1)",
           413: "send a shorter conversation",
           429: "the provider is busy or the quota is spent; wait and try again"}.get(status)
    return ProviderError(f"{base_url} answered {status}: {message}", fix)


@dataclass(frozen=True)
class RemoteChatModel:
    """A model behind a provider as a `generate.chat.ChatModel`: `stream` takes our `SamplingParams`."""

    client: ProviderClient
    model: str

    @property
    def label(self) -> str:
        return f"{self.model} at {self.client.base_url}"

    def stream(self, messages: Sequence[dict[str, Any]], params: SamplingParams) -> ChatStream:
        return self.client.stream_chat(self.model, messages, **openai_params(params))
