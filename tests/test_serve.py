"""The API server as clients see it: the official `openai` package against uvicorn on 127.0.0.1, real model."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from llm_playground.serve import BackgroundServer, RequestLog, create_app

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    return tmp_path_factory.mktemp("serve") / "logs.db"


@pytest.fixture(scope="module")
def server(smollm2, log_path):
    with BackgroundServer(create_app({"smollm2": smollm2}, request_log=RequestLog(log_path))) as running:
        yield running


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120)


def test_models_and_health(client, server):
    assert [m.id for m in client.models.list()] == ["smollm2"]
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["models"]["smollm2"]["queue_depth"] == 0


def test_chat_answers_with_usage(client):
    reply = client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=20)
    [choice] = reply.choices
    assert "Paris" in choice.message.content and choice.message.role == "assistant"
    assert choice.finish_reason == "stop" and reply.object == "chat.completion"
    assert reply.usage.prompt_tokens > 10 and reply.usage.completion_tokens > 3
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streamed_chat_equals_whole_answer_and_ends_with_done(client, server):
    whole = client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=20)
    stream = client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=20,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    raw = httpx.post(f"{server.url}/v1/chat/completions", timeout=60, json={
        "model": "smollm2", "messages": QUESTION, "max_tokens": 3, "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.rstrip().endswith("data: [DONE]")


def test_n_sequences_are_independent_samples(client):
    reply = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Name a color."}],
                                           n=2, seed=3, temperature=1.0, max_tokens=8)
    assert [c.index for c in reply.choices] == [0, 1]
    assert all(c.message.content for c in reply.choices)
    one = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Name a color."}],
                                         max_tokens=1)
    assert reply.usage.prompt_tokens == one.usage.prompt_tokens  # the shared prompt counts once
    assert 2 <= reply.usage.completion_tokens <= 16


def test_stop_string_ends_the_answer(client):
    reply = client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=20,
                                           stop=[" Paris"])
    choice = reply.choices[0]
    assert "Paris" not in choice.message.content and choice.finish_reason == "stop"
    assert choice.message.content.startswith("The capital of France is")


def test_same_seed_same_answer(client):
    def sample(seed: int) -> str:
        return client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Tell a joke."}],
                                              seed=seed, temperature=1.0, max_tokens=12).choices[0].message.content

    first = sample(11)
    assert sample(11) == first
    assert sample(12) != first


def test_engine_parameters_beyond_openai_are_accepted(client):
    """top_k, min_p and repetition_penalty, as vLLM and llama.cpp servers name them (extra_body)."""
    def answer(**extra: float) -> str:
        return client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Tell a joke."}],
                                              seed=3, temperature=1.0, max_tokens=12,
                                              extra_body=extra).choices[0].message.content

    greedy = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Tell a joke."}],
                                            temperature=0, max_tokens=12).choices[0].message.content
    assert answer(top_k=1) == greedy and answer(min_p=1.0) == greedy
    assert answer(repetition_penalty=1.3)
    assert answer(top_k=-1)  # vLLM's "off"
    with pytest.raises(openai.BadRequestError):
        answer(top_k=-2)


def test_logprobs_with_alternatives(client):
    reply = client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=20,
                                           logprobs=True, top_logprobs=3)
    content = reply.choices[0].logprobs.content
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    for token in content:
        assert len(token.top_logprobs) == 3 and token.logprob <= 0
        assert token.top_logprobs[0].token == token.token  # greedy takes the most likely
        assert token.top_logprobs[0].logprob >= token.top_logprobs[1].logprob >= token.top_logprobs[2].logprob


def test_text_completions_with_legacy_logprobs(client):
    reply = client.completions.create(model="smollm2", prompt="The capital of France is", max_tokens=4,
                                      temperature=0, logprobs=2)
    choice = reply.choices[0]
    assert choice.text.startswith(" Paris") and choice.finish_reason == "length"
    assert "".join(choice.logprobs.tokens) == choice.text and len(choice.logprobs.top_logprobs[0]) == 2
    assert reply.usage.completion_tokens == 4
    streamed = client.completions.create(model="smollm2", prompt="The capital of France is", max_tokens=4,
                                         temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == choice.text


@pytest.mark.parametrize("params, fragment", [
    ({"temperature": -1}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"n": 0}, "n"),
    ({"max_tokens": 0}, "max_new_tokens"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"response_format": {"type": "xml"}}, "response_format"),
])
def test_bad_parameters_get_400_in_openai_shape(client, params, fragment):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="smollm2", messages=QUESTION, **params)
    assert caught.value.status_code == 400 and fragment in caught.value.message
    assert caught.value.body["type"] == "invalid_request_error"


def test_malformed_bodies_get_400(server):
    for body, fragment in [(b"{not json", "not valid JSON"), (b"[]", "JSON object"),
                           (b'{"model": "smollm2"}', "messages"),
                           (b'{"model": "smollm2", "messages": [{"role": "user", "content": "x"}], "bogus": 1}',
                            "unrecognized request argument: bogus")]:
        response = httpx.post(f"{server.url}/v1/chat/completions", content=body)
        assert response.status_code == 400 and fragment in response.json()["error"]["message"]


def test_unknown_model_gets_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-9", messages=QUESTION)
    assert caught.value.body["code"] == "model_not_found"


def test_body_too_large_gets_413(smollm2):
    with BackgroundServer(create_app({"smollm2": smollm2}, max_body_bytes=10_000)) as small:
        client = openai.OpenAI(base_url=f"{small.url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "x" * 20_000}])
        assert caught.value.status_code == 413 and caught.value.body["code"] == "body_too_large"


def test_api_key_required_when_set(smollm2):
    with BackgroundServer(create_app({"smollm2": smollm2}, api_key="s3cret")) as locked:
        for key in ("wrong", "s3cret-but-longer"):
            client = openai.OpenAI(base_url=f"{locked.url}/v1", api_key=key, max_retries=0)
            with pytest.raises(openai.AuthenticationError) as caught:
                client.models.list()
            assert caught.value.status_code == 401
        missing = httpx.get(f"{locked.url}/v1/models")
        assert missing.status_code == 401 and "no API key" in missing.json()["error"]["message"]
        right = openai.OpenAI(base_url=f"{locked.url}/v1", api_key="s3cret", max_retries=0)
        assert [m.id for m in right.models.list()] == ["smollm2"]


def _wait_idle(url: str, seconds: float = 10) -> float:
    start = time.perf_counter()
    while httpx.get(f"{url}/health").json()["models"]["smollm2"]["queue_depth"]:
        assert time.perf_counter() - start < seconds, "the worker never became idle"
        time.sleep(0.05)
    return time.perf_counter() - start


def test_full_queue_gets_429_and_disconnects_cancel(smollm2, tmp_path):
    log = RequestLog(tmp_path / "logs.db")
    with BackgroundServer(create_app({"smollm2": smollm2}, max_waiting=1, request_log=log)) as busy:
        client = openai.OpenAI(base_url=f"{busy.url}/v1", api_key="unused", max_retries=0)
        long = {"model": "smollm2", "prompt": "Count: 1, 2, 3,", "max_tokens": 400, "temperature": 0}
        running = client.completions.create(**long, stream=True)
        next(iter(running))  # generating now
        waiting = client.completions.create(**long, stream=True)  # admitted: the queue holds it
        with pytest.raises(openai.RateLimitError) as caught:
            client.completions.create(**long)
        assert caught.value.status_code == 429 and caught.value.body["code"] == "queue_full"
        metrics = httpx.get(f"{busy.url}/metrics").text
        assert 'llmp_queue_depth{model="smollm2"} 2.0' in metrics
        running.close()
        waiting.close()
        # 400 tokens would take ~20 s each; cancelled, both are gone within a couple of tokens.
        assert _wait_idle(busy.url) < 5
        client.completions.create(model="smollm2", prompt="Hi", max_tokens=1)
    statuses = sorted(r.status for r in log.query())
    assert statuses == [200, 429, 499, 499]


def test_a_client_that_gives_up_cancels_its_whole_answer(smollm2, tmp_path):
    log = RequestLog(tmp_path / "logs.db")
    with BackgroundServer(create_app({"smollm2": smollm2}, request_log=log)) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server.url}/v1/completions", timeout=1.0, json={
                "model": "smollm2", "prompt": "Count: 1, 2, 3,", "max_tokens": 400, "temperature": 0})
        assert _wait_idle(server.url) < 5
    [record] = log.query()
    assert record.status == 499 and record.error == "the client disconnected"


def test_metrics_count_requests_tokens_and_latency(client, server):
    client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=2)
    text = httpx.get(f"{server.url}/metrics").text
    assert 'llmp_requests_total{endpoint="/v1/chat/completions",model="smollm2",status="200"}' in text
    assert 'llmp_tokens_total{kind="completion",model="smollm2"}' in text
    assert "llmp_request_latency_seconds_bucket" in text and "llmp_time_to_first_token_seconds_count" in text
    assert 'llmp_queue_depth{model="smollm2"} 0.0' in text


def test_every_request_is_logged(client, log_path):
    client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Log me: zebra"}],
                                   temperature=0, max_tokens=3, seed=5)
    deadline = time.monotonic() + 5
    while not (records := RequestLog(log_path).query(search="zebra")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    record = records[0]
    assert record.model == "smollm2" and record.status == 200 and record.endpoint == "/v1/chat/completions"
    assert record.messages[0]["content"] == "Log me: zebra" and record.params["seed"] == 5
    assert record.completion_tokens == 3 and record.output[0]["finish_reason"] == "length"
    assert record.total_ms > 0 and record.ttft_ms > 0 and record.time.startswith("20")


TOOLS = [
    {"type": "function", "function": {
        "name": "fn_add_numbers", "description": "Add two numbers together and return their sum.",
        "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                       "required": ["a", "b"]}}},
    {"type": "function", "function": {
        "name": "fn_greet", "description": "Generate a greeting message for a person by name.",
        "parameters": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}},
]
SUM = [{"role": "user", "content": "What is the sum of 2 and 3?"}]


def _call(reply) -> tuple[str, dict]:
    [call] = reply.choices[0].message.tool_calls
    assert call.type == "function" and call.id.startswith("call")
    return call.function.name, json.loads(call.function.arguments)


def test_tool_choice_required_decodes_a_valid_call(client):
    reply = client.chat.completions.create(model="smollm2", messages=SUM, tools=TOOLS, tool_choice="required",
                                           temperature=0)
    assert reply.choices[0].finish_reason == "tool_calls" and reply.choices[0].message.content is None
    name, arguments = _call(reply)
    assert name == "fn_add_numbers" and set(arguments) == {"a", "b"}
    assert all(isinstance(v, int | float) for v in arguments.values())
    assert reply.usage.completion_tokens > 0


def test_tool_choice_named_function(client):
    reply = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Greet shrek"}],
                                           tools=TOOLS, tool_choice={"type": "function",
                                                                     "function": {"name": "fn_greet"}})
    name, arguments = _call(reply)
    assert name == "fn_greet" and isinstance(arguments["name"], str)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="smollm2", messages=SUM, tools=TOOLS,
                                       tool_choice={"type": "function", "function": {"name": "fn_missing"}})


def test_tool_choice_auto_calls_or_answers(client):
    reply = client.chat.completions.create(model="smollm2", messages=SUM, tools=TOOLS, tool_choice="auto",
                                           temperature=0, max_tokens=30)
    choice = reply.choices[0]
    if choice.finish_reason == "tool_calls":
        assert _call(reply)[0] in ("fn_add_numbers", "fn_greet")
    else:
        assert choice.message.content and not choice.message.tool_calls


def test_tool_choice_none_is_a_plain_chat(client):
    reply = client.chat.completions.create(model="smollm2", messages=QUESTION, tools=TOOLS, tool_choice="none",
                                           temperature=0, max_tokens=20)
    assert "Paris" in reply.choices[0].message.content and not reply.choices[0].message.tool_calls
    assert reply.choices[0].finish_reason == "stop"


def test_streamed_tool_call(client):
    stream = client.chat.completions.create(model="smollm2", messages=SUM, tools=TOOLS, tool_choice="required",
                                            temperature=0, stream=True)
    chunks = list(stream)
    calls = [call for c in chunks for call in (c.choices[0].delta.tool_calls or [])]
    assert [c.function.name for c in calls] == ["fn_add_numbers"]
    assert set(json.loads(calls[0].function.arguments)) == {"a", "b"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_response_format_json_schema_is_obeyed(client):
    schema = {"type": "object", "properties": {"country": {"type": "string", "maxLength": 20},
                                               "capital": {"type": "string", "maxLength": 20},
                                               "in_europe": {"type": "boolean"}},
              "required": ["country", "capital", "in_europe"], "additionalProperties": False}
    reply = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "What is the capital of France? Answer in JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "capital", "schema": schema}},
        temperature=0, max_tokens=60)
    data = json.loads(reply.choices[0].message.content)
    assert list(data) == ["country", "capital", "in_europe"] and isinstance(data["in_europe"], bool)
    assert data["capital"] == "Paris" and reply.choices[0].finish_reason == "stop"


def test_response_format_json_object(client):
    reply = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Describe a cat in JSON."}],
        response_format={"type": "json_object"}, temperature=0, max_tokens=80)
    assert isinstance(json.loads(reply.choices[0].message.content), dict)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="smollm2", messages=QUESTION, n=2,
                                       response_format={"type": "json_object"})


AGENT_TOOLS = [
    {"type": "function", "function": {"name": "clock", "description": "The current date and time in UTC (ISO 8601), "
                                      "and the day of the week.", "parameters": {"type": "object", "properties": {}}}},
    {"type": "function", "function": {"name": "calculator", "description": "Evaluate an arithmetic expression.",
                                      "parameters": {"type": "object", "properties": {"expression": {"type": "string"}},
                                                     "required": ["expression"]}}},
]


def test_the_openai_client_runs_an_agent_loop(client):
    """The client's loop: call → run the tool here → send its result back as a `tool` message → the answer."""
    from llm_playground.agent import builtin_tools, run_tool

    tools = builtin_tools()
    messages: list = [{"role": "user", "content": "What day of the week is it today?"}]
    calls = []
    for _ in range(4):
        reply = client.chat.completions.create(model="smollm2", messages=messages, tools=AGENT_TOOLS,
                                               tool_choice="auto", temperature=0, max_tokens=60)
        message = reply.choices[0].message
        if not message.tool_calls:
            break
        assert reply.choices[0].finish_reason == "tool_calls"
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            calls.append(call.function.name)
            result = run_tool(tools[call.function.name], json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result.text})
    assert calls == ["clock"]
    assert reply.choices[0].finish_reason in ("stop", "length") and message.content.strip()
    assert reply.usage.completion_tokens > 0
