"""The OpenAI request bodies we accept, validated once, and the error body every failure is sent as.

Parameters OpenAI defines but we cannot honour are refused (400) rather than silently ignored; a few
that change nothing about the output (`user`, `metadata`, `store`, `service_tier`) are accepted.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm_playground.errors import ContextOverflow, InvalidParameter, PlaygroundError


class ApiError(PlaygroundError):
    """A failure with an HTTP status and OpenAI's error `type` and `code`."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.code, self.param = status, type, code, param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def api_error(exc: PlaygroundError) -> ApiError:
    """Every expected failure of the library is the caller's fault: a 400 with the fix in the message."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, InvalidParameter):  # its fix names CLI options; the message names the field
        param = exc.message.split(":", 1)[0] if ":" in exc.message else None
        return ApiError(400, exc.message, param=param)
    code = "context_length_exceeded" if isinstance(exc, ContextOverflow) else None
    return ApiError(400, str(exc), code=code)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    n: int = 1
    stop: str | list[str] | None = None
    seed: int | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    # Not OpenAI's, but our engine has them and vLLM / llama.cpp servers accept them under these names.
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    # Accepted, and changing nothing about the output.
    user: str | None = None
    metadata: dict[str, Any] | None = None
    store: bool | None = None
    service_tier: str | None = None

    @field_validator("stop")
    @classmethod
    def _at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop strings")
        return value

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ChatRequest(_Request):
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_completion_tokens: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None

    @field_validator("tool_choice")
    @classmethod
    def _known_choice(cls, value: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
        if isinstance(value, str) and value not in ("auto", "none", "required"):
            raise ValueError("tool_choice must be 'auto', 'none', 'required' or {'type': 'function', ...}")
        if isinstance(value, dict) and not isinstance((value.get("function") or {}).get("name"), str):
            raise ValueError("a named tool_choice is {'type': 'function', 'function': {'name': ...}}")
        return value

    @field_validator("response_format")
    @classmethod
    def _known_format(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        kind = (value or {}).get("type", "text")
        if kind not in ("text", "json_object", "json_schema"):
            raise ValueError("response_format type must be 'text', 'json_object' or 'json_schema'")
        if kind == "json_schema" and not isinstance((value or {}).get("json_schema", {}).get("schema"), dict):
            raise ValueError("json_schema needs {'json_schema': {'name': ..., 'schema': {...}}}")
        return value

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class CompletionRequest(_Request):
    prompt: str | list[str] | list[int] = Field(min_length=1)
    logprobs: int | None = Field(None, ge=0, le=5)
    echo: Literal[False] = False

    @property
    def token_limit(self) -> int | None:
        # OpenAI's legacy completions default to 16 tokens; an explicit null means "as many as fit".
        return 16 if self.max_tokens is None and "max_tokens" not in self.model_fields_set else self.max_tokens


def parse_request(kind: type[_Request], raw: bytes) -> Any:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    try:
        return kind.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "body"
        if error["type"] == "extra_forbidden":
            raise ApiError(400, f"unrecognized request argument: {field}", param=field) from None
        message = error["msg"].removeprefix("Value error, ")
        raise ApiError(400, f"{field}: {message}", param=field) from None


def message_text(message: dict[str, Any]) -> str:
    """A message's content as plain text: a string, or the text parts of a list of parts."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, "only text content parts are supported", param="messages")
            parts.append(part["text"])
        return "".join(parts)
    raise ApiError(400, "message content must be a string or a list of text parts", param="messages")


def plain_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """OpenAI messages as the chat template's {role, content}; tool calls and results become text."""
    plain = []
    for message in messages:
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise ApiError(400, f"unknown message role {role!r}", param="messages")
        text = message_text(message)
        if role == "assistant" and message.get("tool_calls"):
            calls = [{"name": c.get("function", {}).get("name"), "arguments": c.get("function", {}).get("arguments")}
                     for c in message["tool_calls"]]
            text = (text + "\n" if text else "") + json.dumps(calls, ensure_ascii=False)
        plain.append({"role": "system" if role == "developer" else role, "content": text})
    return plain
