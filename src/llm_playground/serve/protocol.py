"""The OpenAI request bodies we accept, validated once, and the error body every failure is sent as.

Parameters OpenAI defines but we cannot honour are refused (400) rather than silently ignored; a few
that change nothing about the output (`user`, `metadata`, `store`, `service_tier`) are accepted.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from jsonschema import Draft202012Validator, SchemaError  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WrapValidator, field_validator, model_validator

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


MAX_DEPTH = 64  # JSON nesting a request may have; deeper is refused before it is parsed
MAX_SEED = 2**63 - 1  # OpenAI's seed is a 64-bit signed integer
_SURROGATE = re.compile("[\ud800-\udfff]")
# Outside strings only brackets count; strings (escapes included) are skipped whole.
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class _Strict(BaseModel):
    """No unknown fields, no coercion ("yes" is not a bool, "5" not a number), no NaN or Infinity."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, populate_by_name=True)


def _check_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema that itself follows the meta-schema (`required: 5` is not one)."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the schema"
        raise ValueError(f"not a valid JSON Schema at {where}: {exc.message}") from None
    return schema


if TYPE_CHECKING:  # after validation the fields hold the JSON as sent (the code below reads dicts)
    Messages = list[dict[str, Any]]
    Tools = list[dict[str, Any]]
    ToolChoiceField = str | dict[str, Any]
    ResponseFormatField = dict[str, Any]
else:
    def _as_sent(value: Any, handler: Any) -> Any:
        handler(value)
        return value

    def _kept(kind: Any) -> Any:
        return Annotated[kind, WrapValidator(_as_sent)]


class TextPart(_Strict):
    type: Literal["text"]
    text: str


Content = str | list[TextPart]


class FunctionCall(_Strict):
    name: str
    arguments: str


class ToolCallItem(_Strict):
    id: str
    type: Literal["function"]
    function: FunctionCall


class SystemMessage(_Strict):
    role: Literal["system", "developer"]
    content: Content
    name: str | None = None


class UserMessage(_Strict):
    role: Literal["user"]
    content: Content  # null is refused, as OpenAI does
    name: str | None = None


class AssistantMessage(_Strict):
    role: Literal["assistant"]
    content: Content | None = None
    tool_calls: list[ToolCallItem] | None = None
    name: str | None = None
    refusal: str | None = None


class ToolMessage(_Strict):
    role: Literal["tool"]
    content: Content
    tool_call_id: str


Message = Annotated[SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")]


class FunctionDefinition(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _check_json_schema(value)


class Tool(_Strict):
    type: Literal["function"]
    function: FunctionDefinition


class ToolName(_Strict):
    name: str


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: ToolName


class JsonSchemaFormat(_Strict):
    name: str | None = None  # OpenAI requires it; it changes nothing here
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_json_schema(value)


class TextFormat(_Strict):
    type: Literal["text"]


class JsonObjectFormat(_Strict):
    type: Literal["json_object"]


class JsonSchemaResponse(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaResponse, Field(discriminator="type")]


class StreamOptions(_Strict):
    include_usage: bool | None = None


if not TYPE_CHECKING:
    Messages = _kept(list[Message])
    Tools = _kept(list[Tool])
    ToolChoiceField = _kept(Literal["auto", "none", "required"] | NamedToolChoice)
    ResponseFormatField = _kept(ResponseFormat)


class _Request(_Strict):
    model: str
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=128)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-MAX_SEED - 1, le=MAX_SEED)
    max_tokens: int | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    # Not OpenAI's, but our engine has them and vLLM / llama.cpp servers accept them under these names
    # (top_k -1 is vLLM's "off").
    top_k: int | None = Field(None, ge=-1)
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0)
    # Accepted, and changing nothing about the output.
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop_strings(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop strings")
        if value == "" or (isinstance(value, list) and "" in value):
            raise ValueError("a stop string cannot be empty")
        return value

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> Any:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options: only allowed when stream is true")
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatRequest(_Request):
    messages: Messages = Field(min_length=1)
    max_completion_tokens: int | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    tools: Tools | None = None
    tool_choice: ToolChoiceField | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormatField | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Any:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs: only allowed when logprobs is true")
        if self.logprobs and self.tools and self.tool_choice != "none":
            raise ValueError("logprobs: not supported together with tools; leave one out")
        return self

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


class CompletionRequest(_Request):
    prompt: str | list[str] | list[int] = Field(min_length=1)
    logprobs: int | None = Field(None, ge=0, le=5)
    echo: bool = False

    @property
    def token_limit(self) -> int | None:
        # OpenAI's legacy completions default to 16 tokens; an explicit null means "as many as fit".
        return 16 if self.max_tokens is None and "max_tokens" not in self.model_fields_set else self.max_tokens


def _refuse_constant(name: str) -> Any:
    raise ApiError(400, f"the body is not valid JSON: {name} is not a JSON number")


def _check_depth(raw: bytes) -> None:
    depth = 0
    for match in _JSON_TOKENS.finditer(raw):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise ApiError(400, f"the body is nested deeper than {MAX_DEPTH} levels")
        elif token in (b"]", b"}"):
            depth -= 1


def _lone_surrogate(value: Any, path: str = "") -> str | None:
    """The path of the first string (or key) holding half a UTF-16 pair ("\\ud800" alone), if any."""
    if isinstance(value, str):
        return path or "body" if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _SURROGATE.search(key):
                return f"{path}.{key!a}" if path else repr(key)
            found = _lone_surrogate(item, f"{path}.{key}" if path else key)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _lone_surrogate(item, f"{path}[{i}]")
            if found:
                return found
    return None


_MODEL_FIELD = re.compile(rb'"model"\s*:\s*"([A-Za-z0-9._:/-]{1,200})"')


def sniff_model(raw: bytes) -> str:
    """The model a body that does not parse asks for, if it says so plainly: its refusal is counted there."""
    match = _MODEL_FIELD.search(raw[:4096])
    return match.group(1).decode() if match else ""


def refuse_lone_surrogates(body: Any) -> None:
    where = _lone_surrogate(body)
    if where:
        raise ApiError(400, f"{where}: the text holds a lone UTF-16 surrogate, which is not a character",
                       param=where)


def decode_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object: deep nesting refused before parsing, NaN and Infinity while parsing."""
    _check_depth(raw)
    try:
        body = json.loads(raw, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # the depth check counts brackets; this is only a second line of defence
        raise ApiError(400, f"the body is nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _param(error: Any, body: Any) -> str:
    """OpenAI's `param` for a Pydantic error: the path in the body (union tags left out), e.g. `messages[0].content`."""
    loc = tuple(error["loc"])
    path, node = "", body
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path, node = (f"{path}.{part}" if path else part), node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path, node = f"{path}[{part}]", node[part]
    if error["type"] == "missing" and loc and isinstance(loc[-1], str):
        path = f"{path}.{loc[-1]}" if path else loc[-1]
    return path or "body"


def validate_request(kind: type[_Request], body: dict[str, Any]) -> Any:
    """The request model of a decoded body; text with lone surrogates (which no encoding can carry on,
    to the tokenizer or the log) is refused first."""
    refuse_lone_surrogates(body)
    try:
        return kind.model_validate(body)
    except ValidationError as exc:
        # Of a union's errors, the deepest says most (`function.name` missing, not "should be 'auto'").
        error = max(exc.errors(), key=lambda e: len(e["loc"]))
        field = _param(error, body)
        if error["type"] == "extra_forbidden":
            raise ApiError(400, f"unrecognized request argument: {field}", param=field) from None
        message = re.sub(r" or instance of \w+", "", error["msg"].removeprefix("Value error, "))
        message = message.replace("a valid dictionary", "a JSON object")
        if error["loc"] == () and ":" in message:  # a model validator names its field first
            field = message.split(":", 1)[0]
            raise ApiError(400, message, param=field) from None
        raise ApiError(400, f"{field}: {message}", param=field) from None


def parse_request(kind: type[_Request], raw: bytes) -> Any:
    return validate_request(kind, decode_body(raw))


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
