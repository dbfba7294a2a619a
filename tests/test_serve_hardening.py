"""Issue 12: malformed requests get OpenAI-shaped 400s, every request is logged, JSON stays honest.

One server for the module; the many bad inputs go over one kept connection (as an attacker's would).
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
import time

import httpx
import numpy as np
import pytest

from llm_playground.functions.calling import argument_schema
from llm_playground.functions.schema import specs_from_openai_tools
from llm_playground.migrations import schema_version
from llm_playground.serve import BackgroundServer, RequestLog, create_app
from llm_playground.serve.requestlog import LogRecord
from llm_playground.serve.worker import ModelWorker

pytestmark = pytest.mark.slow

USER = [{"role": "user", "content": "Hi"}]
ADD = [{"type": "function", "function": {
    "name": "add_numbers", "description": "Add two numbers together and return their sum.",
    "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                   "required": ["a", "b"]}}}]


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    return tmp_path_factory.mktemp("hardening") / "logs.db"


@pytest.fixture(scope="module")
def server(smollm2, log_path):
    app = create_app({"smollm2": smollm2}, request_log=RequestLog(log_path), max_choices=4)
    with BackgroundServer(app) as running:
        yield running


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def _chat(**fields):
    return {"model": "smollm2", "messages": USER, **fields}


def _function(parameters):
    return [{"type": "function", "function": {"name": "f", "parameters": parameters}}]


# (body, the param the 400 names): the 500s first, then what OpenAI refuses.
BAD = [
    (_chat(response_format={"type": "json_schema", "json_schema": None}), "response_format.json_schema"),
    (_chat(response_format={"type": "json_schema", "json_schema": "s"}), "response_format.json_schema"),
    (_chat(tool_choice={"type": "function", "function": "f"}, tools=ADD), "tool_choice.function"),
    (_chat(messages=[*USER, {"role": "assistant", "tool_calls": ["x", "y"]}]), "messages[1].tool_calls[0]"),
    (_chat(messages=[*USER, {"role": "assistant", "tool_calls": "x"}]), "messages[1].tool_calls"),
    (_chat(messages=[*USER, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": None}]}]),
     "messages[1].tool_calls[0].function"),
    (_chat(tools=_function({"type": "object", "properties": {"a": {"type": "string"}}, "required": 5})),
     "tools[0].function.parameters"),
    (_chat(tools=_function({"type": "object", "properties": {"a": {"type": "string"}}, "required": [["a"]]})),
     "tools[0].function.parameters"),
    (b'{"model": "smollm2", "messages": [{"role": "user", "content": "\\ud800"}]}', "messages[0].content"),
    (b'{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", '
     b'"function": {"name": "f", "description": "\\udfff"}}]}', "tools[0].function.description"),
    (b'{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "stop": ["\\udc00"]}', "stop[0]"),
    (b'{"model": "smollm2", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", None),
    (b'{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "temperature": NaN}', None),
    (b'{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "temperature": Infinity}', None),
    (b'{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "temperature": 1e999}', "temperature"),
    (_chat(temperature=2.5), "temperature"),
    (_chat(seed=2**64), "seed"),
    (_chat(messages=[{"role": "user", "content": None}]), "messages[0].content"),
    (_chat(stop=""), "stop"),
    (_chat(top_logprobs=2), "top_logprobs"),
    (_chat(stream="yes"), "stream"),
    (_chat(stream_options={"include_usage": True}), "stream_options"),
    (_chat(logprobs=True, tools=ADD), "logprobs"),
    (_chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]),
     "messages[0].content[0].type"),
    (_chat(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}),
     "response_format.json_schema.schema"),
    (_chat(n=5), "n"),  # above this server's --max-choices
]


def test_malformed_requests_get_400_naming_the_param_on_one_connection(http, log_path, server):
    before = len(RequestLog(log_path).query(limit=None))
    for body, param in BAD:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = http.post("/v1/chat/completions", content=raw)
        error = response.json()["error"]
        assert response.status_code == 400, (raw[:120], response.text[:300])
        assert error["type"] == "invalid_request_error" and set(error) == {"message", "type", "param", "code"}
        assert error["param"] == param, (raw[:120], error)
        assert "Traceback" not in error["message"] and response.headers.get("connection") != "close"
    # Every one was logged (the writer is a background thread) and counted under the model it asked for.
    deadline = time.monotonic() + 10
    while len(records := RequestLog(log_path).query(limit=None)) < before + len(BAD):
        assert time.monotonic() < deadline, "refused requests are missing from the log"
        time.sleep(0.05)
    refused = [r for r in records if r.status == 400]
    assert all(r.model == "smollm2" for r in refused)
    assert {r.param for r in refused} >= {p for _, p in BAD if p}
    stop = next(r for r in refused if r.param == "stop[0]")
    assert stop.params["stop"] == ["\udc00"]  # stored losslessly
    metrics = http.get("/metrics").text
    counted = re.search(r'llmp_requests_total\{endpoint="/v1/chat/completions",model="smollm2",status="400"\} (\S+)',
                        metrics)
    assert counted and float(counted.group(1)) >= len(BAD)


def test_unknown_models_share_one_metrics_label(http):
    for name in ("gpt-x", "evil\nlabel"):
        response = http.post("/v1/chat/completions", json={"model": name, "messages": USER})
        assert response.status_code == 404
    metrics = http.get("/metrics").text
    assert 'model="unknown",status="404"} 2.0' in metrics and "gpt-x" not in metrics


def test_cut_tool_call_is_no_call_and_says_length(http):
    response = http.post("/v1/chat/completions", json={
        "model": "smollm2", "messages": [{"role": "user", "content": "Add 2 and 3"}], "tools": ADD,
        "tool_choice": "required", "max_tokens": 3}).json()
    [choice] = response["choices"]
    assert choice["finish_reason"] == "length" and not choice["message"].get("tool_calls")
    assert choice["message"]["content"] == ""
    whole = http.post("/v1/chat/completions", json={
        "model": "smollm2", "messages": [{"role": "user", "content": "Add 2 and 3"}], "tools": ADD,
        "tool_choice": "required", "temperature": 0}).json()
    [call] = whole["choices"][0]["message"]["tool_calls"]
    assert re.fullmatch(r"call_[A-Za-z0-9]{24}", call["id"])


def test_auto_word_answer_streams_token_by_token(http):
    with http.stream("POST", "/v1/chat/completions", json={
            "model": "smollm2", "messages": [{"role": "user", "content": "Write a short poem about the sea."}],
            "tools": ADD, "tool_choice": "auto", "temperature": 0, "max_tokens": 12, "stream": True}) as response:
        chunks = [json.loads(line[6:]) for line in response.iter_lines()
                  if line.startswith("data: {")]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    calls = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
    assert not calls and len([t for t in contents if t]) > 3, contents


def test_echo_and_max_tokens_zero_score_the_prompt(http):
    reply = http.post("/v1/completions", json={"model": "smollm2", "prompt": "The capital of France is",
                                               "max_tokens": 0, "echo": True, "logprobs": 1}).json()
    [choice] = reply["choices"]
    assert choice["text"] == "The capital of France is" and reply["usage"]["completion_tokens"] == 0
    logprobs = choice["logprobs"]
    assert "".join(logprobs["tokens"]) == choice["text"] and logprobs["token_logprobs"][0] is None
    assert all(lp < 0 for lp in logprobs["token_logprobs"][1:]) and len(logprobs["top_logprobs"][1]) == 1
    more = http.post("/v1/completions", json={"model": "smollm2", "prompt": "The capital of France is",
                                              "max_tokens": 2, "echo": True, "temperature": 0}).json()
    assert more["choices"][0]["text"].startswith("The capital of France is ")


def test_prompts_times_n_are_capped(http):
    response = http.post("/v1/completions", json={"model": "smollm2", "prompt": ["a", "b", "c"], "n": 2})
    assert response.status_code == 400 and response.json()["error"]["param"] == "prompt"
    assert "--max-choices" in response.json()["error"]["message"]


def test_a_multi_prompt_request_requeues_between_prompts(smollm2):
    """Two requests on one worker: the three-prompt one lets the other run after its first prompt."""
    from llm_playground.serve.worker import Requeue

    order: list[str] = []
    worker = ModelWorker("m", smollm2, max_waiting=4)

    def parts(name: str, count: int):
        def work(emit, cancelled, left=count):
            order.append(name)
            time.sleep(0.05)
            return Requeue(lambda e, c: work(e, c, left - 1)) if left > 1 else name
        return work

    async def main() -> None:
        first = worker.submit(parts("many", 3))
        await asyncio.sleep(0.01)
        second = worker.submit(parts("one", 1))
        for job in (first, second):
            async for _ in job.stream():
                pass
        assert (first.result, second.result) == ("many", "one")

    asyncio.run(main())
    worker.close()
    assert order == ["many", "one", "many", "many"]


def test_a_disconnected_stream_keeps_its_partial_answer(smollm2, tmp_path):
    log = RequestLog(tmp_path / "logs.db")
    with BackgroundServer(create_app({"smollm2": smollm2}, request_log=log)) as running:
        with httpx.stream("POST", f"{running.url}/v1/completions", timeout=60, json={
                "model": "smollm2", "prompt": "Count: 1, 2, 3,", "max_tokens": 300, "temperature": 0,
                "stream": True}) as response:
            lines = response.iter_lines()
            seen = [next(lines) for _ in range(8)]
        assert any(line.startswith("data: ") for line in seen)
        deadline = time.monotonic() + 10
        while not log.query():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    [record] = log.query()
    assert record.status == 499 and record.completion_tokens >= 2 and record.prompt_tokens > 3
    assert record.output[0]["text"].strip()


class _Broken:
    """The real model, whose forward fails as a bug would (with text that must not reach the client)."""

    def __init__(self, model):
        self._model = model

    def __getattr__(self, name):
        return getattr(self._model, name)

    def forward(self, ids, cache):
        raise RuntimeError("secret internals /home/user")


def test_an_unexpected_error_is_one_generic_logged_500_with_connection_close(smollm2, tmp_path):
    log = RequestLog(tmp_path / "logs.db")
    with BackgroundServer(create_app({"smollm2": _Broken(smollm2)}, request_log=log, api_key="k")) as running:
        headers = {"Authorization": "Bearer k"}
        response = httpx.post(f"{running.url}/v1/completions", headers=headers, timeout=60,
                              json={"model": "smollm2", "prompt": "Hi", "max_tokens": 2})
        assert response.status_code == 500 and response.headers["connection"] == "close"
        assert "secret" not in response.text and response.json()["error"]["type"] == "server_error"
        # /openapi.json is behind the key, like /v1.
        assert httpx.get(f"{running.url}/openapi.json").status_code == 401
        assert httpx.get(f"{running.url}/openapi.json", headers=headers).json()["info"]["title"]
    [record] = log.query()
    assert record.status == 500 and "secret" not in (record.error or "")


def test_request_log_surrogates_are_lossless_and_search_is_literal(tmp_path):
    log = RequestLog(tmp_path / "logs.db")
    log.record(LogRecord("/v1/completions", "m\udc00", 200, "half \ud800 pair", {"stop": ["\udc00"]}, [], None))
    log.record(LogRecord("/v1/completions", "m", 200, "100% sure", {}, [], None))
    log.record(LogRecord("/v1/completions", "m", 200, "a_b", {}, [], None))
    [first] = log.query(search="half")
    assert first.model == "m\\udc00" and first.messages == "half \ud800 pair" and first.params == {"stop": ["\udc00"]}
    assert [r.messages for r in log.query(search="%")] == ["100% sure"]
    assert [r.messages for r in log.query(search="_")] == ["a_b"]


def test_request_log_opens_a_file_of_the_previous_schema(tmp_path):
    path = tmp_path / "logs.db"
    old = sqlite3.connect(path)  # the table as the first release wrote it, without a schema version
    old.executescript("""
        CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, endpoint TEXT NOT NULL,
            model TEXT NOT NULL, status INTEGER NOT NULL, messages TEXT NOT NULL, params TEXT NOT NULL,
            output TEXT NOT NULL, finish_reason TEXT, prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0, queue_ms REAL, ttft_ms REAL, total_ms REAL, error TEXT);
        CREATE INDEX requests_time ON requests(time);
        INSERT INTO requests (time, endpoint, model, status, messages, params, output)
            VALUES ('2026-01-01T00:00:00', '/v1/completions', 'smollm2', 200, '"old"', '{}', '[]');
    """)
    old.close()
    log = RequestLog(path)
    log.record(LogRecord("/v1/completions", "smollm2", 400, "new", {}, None, param="n", code="invalid_request_error"))
    [new, kept] = log.query()
    assert kept.messages == "old" and kept.param is None and new.param == "n"
    log.close()
    assert schema_version(sqlite3.connect(path)) == 2


def test_numbers_in_grammars_have_bounded_digits(smollm2):
    from llm_playground.functions.grammar import MAX_DIGITS, NumberBound

    tokenizer = smollm2.tokenizer
    bound = NumberBound(tokenizer)
    allowed = np.ones(len(bound.texts), dtype=bool)
    digit = tokenizer.encode("7")[-1]
    for token in tokenizer.encode('{"note":"1234567890123456789","x":0.'):
        bound.advance(token)
    assert bound.restrict(allowed)[digit]  # digits in a string do not count; "0." has one
    for token in tokenizer.encode("1" * (MAX_DIGITS - 1)):
        bound.advance(token)
    limited = bound.restrict(allowed)
    assert not limited[digit] and limited[tokenizer.encode(",")[-1]]


def test_nested_object_parameters_are_closed():
    [spec] = specs_from_openai_tools([{"type": "function", "function": {"name": "book", "parameters": {
        "type": "object", "properties": {"when": {"type": "object", "properties": {"day": {"type": "string"}}},
                                         "free": {"type": "object"}}}}}])
    schema = argument_schema(spec)
    assert schema["properties"]["when"]["additionalProperties"] is False
    assert "additionalProperties" not in schema["properties"]["free"]  # no properties: left open


def test_concurrent_bad_and_good_requests_keep_the_server_up(http):
    results: list[int] = []

    def bad() -> None:
        url = f"{str(http.base_url).rstrip('/')}/v1/chat/completions"
        results.append(httpx.post(url, content=b'{"model": [').status_code)

    threads = [threading.Thread(target=bad) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [400] * 4
    assert http.post("/v1/chat/completions", json=_chat(max_tokens=1)).status_code == 200


def test_tool_requests_get_messages_that_fit_them(http):
    system_only = http.post("/v1/chat/completions", json={
        "model": "smollm2", "messages": [{"role": "system", "content": "Be brief."}], "tools": ADD})
    assert system_only.status_code == 400 and "no user message" in system_only.json()["error"]["message"]
    too_long = http.post("/v1/chat/completions", json={
        "model": "smollm2", "messages": [{"role": "user", "content": "Add 2 and 3"}], "tools": ADD,
        "max_tokens": 100_000}).json()["error"]
    assert too_long["code"] == "context_length_exceeded" and "smollm2" not in too_long["message"].split("—")[-1]
    assert "max_tokens" in too_long["message"]


def test_embeddings_share_the_body_checks(http):
    for raw, param in [(b'{"model": "all-MiniLM-L6-v2", "input": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", None),
                       (b'{"model": "all-MiniLM-L6-v2", "input": ["ok", "\\ud800"]}', "input[1]"),
                       (b'{"model": "all-MiniLM-L6-v2", "input": "x", "dimensions": NaN}', None)]:
        response = http.post("/v1/embeddings", content=raw)
        assert response.status_code == 400 and response.json()["error"]["param"] == param, response.text


def test_a_cut_json_answer_says_length(http):
    reply = http.post("/v1/chat/completions", json={
        "model": "smollm2", "messages": [{"role": "user", "content": "Describe Paris in JSON."}], "max_tokens": 3,
        "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": {
            "type": "object", "properties": {"description": {"type": "string"}}, "required": ["description"]}}}})
    [choice] = reply.json()["choices"]
    assert choice["finish_reason"] == "length" and reply.json()["usage"]["completion_tokens"] == 3
