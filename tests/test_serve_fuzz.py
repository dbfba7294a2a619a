"""Fuzzing the API (issue 12): request bodies drawn from our request models' own JSON Schema, then
corrupted at random, against a real server on 127.0.0.1. No body may get a 500, and every one is logged.

Bounded: a fixed number of examples from a fixed seed (derandomized), answers of at most 3 tokens.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_playground.serve import BackgroundServer, RequestLog, create_app
from llm_playground.serve.protocol import ChatRequest, CompletionRequest

pytestmark = pytest.mark.slow

JSON_LEAF = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8)
JSON = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                         max_size=3), max_leaves=6)


def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy of values valid (mostly) against one of our request models' JSON Schema."""
    if "$ref" in schema:
        return st.deferred(lambda: from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs))
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(option, defs) for option in schema[key]])
    kind = schema.get("type")
    if kind == "string":
        return st.text(max_size=12)
    if kind == "integer":
        return st.integers(schema.get("minimum", schema.get("exclusiveMinimum", -50)),
                           schema.get("maximum", schema.get("exclusiveMaximum", 50)))
    if kind == "number":
        return st.floats(schema.get("minimum", -3), schema.get("maximum", 3), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        items = from_schema(schema.get("items", {}), defs)
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 3), 3))
    if kind == "object" and "properties" in schema:
        properties = {name: from_schema(sub, defs) for name, sub in schema["properties"].items()}
        required = set(schema.get("required", []))
        return st.fixed_dictionaries({k: v for k, v in properties.items() if k in required},
                                     optional={k: v for k, v in properties.items() if k not in required})
    if kind == "object":
        return st.dictionaries(st.text(max_size=6), JSON, max_size=3)
    return JSON


def _bodies(kind: type) -> st.SearchStrategy[dict[str, Any]]:
    schema = kind.model_json_schema()
    return from_schema(schema, schema.get("$defs", {}))


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every place inside a JSON value (keys and indexes), the deep ones included: corruption goes anywhere."""
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*path, i))
    return found


def _set(body: Any, path: tuple, value: Any, drop: bool = False) -> None:
    for part in path[:-1]:
        body = body[part]
    if drop:
        del body[path[-1]]
    else:
        body[path[-1]] = value


TOOLS = [{"type": "function", "function": {"name": "add", "description": "Add two numbers.", "parameters": {
    "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}}]
# Complete requests of each shape the API takes; the schema-drawn fields go on top, then the corruption.
TEMPLATES = [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}),
    ("/v1/chat/completions", {"messages": [{"role": "system", "content": "Be brief."},
                                           {"role": "user", "content": [{"type": "text", "text": "Add 2 and 3"}]}],
                              "tools": TOOLS, "tool_choice": "required"}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Add 1 and 2"},
                                           {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                            "function": {"name": "add", "arguments": "{\"a\": 1, \"b\": 2}"}}]},
                                           {"role": "tool", "tool_call_id": "call_1", "content": "3"}],
                              "tools": TOOLS, "tool_choice": "auto"}),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "A number?"}], "response_format": {
        "type": "json_schema", "json_schema": {"name": "n", "schema": {
            "type": "object", "properties": {"x": {"type": "number", "minimum": 0, "maximum": 20}}}}}}),
    ("/v1/completions", {"prompt": "The capital of France is"}),
    ("/v1/completions", {"prompt": ["One", "Two"], "logprobs": 1, "echo": True}),
]
STRUCTURE = ("model", "messages", "prompt", "tools", "tool_choice", "response_format")


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes]:
    # The corruption is chosen uniformly from a drawn seed: hypothesis' own choices lean to first options.
    rng = random.Random(draw(st.integers(0, 2**32)))
    endpoint, template = rng.choice(TEMPLATES)
    drawn = draw(_bodies(ChatRequest if endpoint == "/v1/chat/completions" else CompletionRequest))
    # A few of the schema-drawn fields (all of them together are seldom a request that runs).
    body = json.loads(json.dumps(template)) | {k: v for k, v in drawn.items() if k not in STRUCTURE
                                               and rng.random() < 0.3}
    body["model"] = "smollm2" if rng.random() < 0.85 else drawn["model"]
    corruption = rng.choice(["none", "none", "node", "node", "drop", "extra", "surrogate", "bytes"])
    paths = _paths(body)
    if corruption in ("node", "drop", "surrogate"):
        if corruption == "surrogate":
            paths = [p for p in paths if isinstance(_get(body, p), str)]
        path = rng.choice(paths)
        value = draw(JSON) if corruption == "node" else rng.choice(["\ud800", "a\udfffb", "\udc00x"])
        _set(body, path, value, drop=corruption == "drop")
    elif corruption == "extra":
        body[draw(st.text(min_size=1, max_size=8))] = draw(JSON)
    # Answers stay tiny (a fuzz run is bounded in time): at most 3 tokens, whatever was drawn.
    body["max_tokens"] = min(body["max_tokens"], 3) if type(body.get("max_tokens")) is int else 2
    body.pop("max_completion_tokens", None)
    raw = json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels as its escape
    if corruption == "bytes":
        cut = rng.randrange(len(raw))
        raw = rng.choice([raw[:cut], raw[:cut] + b"NaN" + raw[cut:], b"[" * 5000 + raw,
                          raw.replace(b"2", b"Infinity", 1), b"\xff\xfe" + raw])
    return endpoint, raw


def _get(body: Any, path: tuple) -> Any:
    for part in path:
        body = body[part]
    return body


@pytest.fixture(scope="module")
def fuzz_server(smollm2, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("fuzz") / "logs.db"
    with BackgroundServer(create_app({"smollm2": smollm2}, request_log=RequestLog(log_path), max_choices=4)) as server:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            yield client, log_path


def test_fuzzed_requests_never_get_a_500_and_are_all_logged(fuzz_server):
    client, log_path = fuzz_server
    sent: list[int] = []
    started = time.perf_counter()

    @settings(max_examples=40, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(requests())
    def one(request: tuple[str, bytes]) -> None:
        endpoint, raw = request
        response = client.post(endpoint, content=raw)
        sent.append(response.status_code)
        assert response.status_code in (200, 400, 404), (raw[:300], response.status_code, response.text[:300])
        assert "server_error" not in response.text, (raw[:300], response.text[:300])
        if response.status_code != 200:
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and "Traceback" not in error["message"]

    one()
    assert time.perf_counter() - started < 60
    assert sent.count(200) >= 3 and sent.count(400) >= 10, sent  # both kinds were exercised
    deadline = time.monotonic() + 10
    while len(RequestLog(log_path).query(limit=None)) < len(sent):
        assert time.monotonic() < deadline, "some fuzzed requests are missing from the log"
        time.sleep(0.05)
    assert sorted(r.status for r in RequestLog(log_path).query(limit=None)) == sorted(sent)
