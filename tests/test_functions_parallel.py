"""Parallel tool calls (issue 12.1): the request cut into single requests, each ranked and decoded alone."""

from __future__ import annotations

import pytest

from llm_playground.functions.split import split_request
from llm_playground.serve import BackgroundServer, create_app

TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather for a city.",
                                           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                          "required": ["city"]}}},
         {"type": "function", "function": {"name": "add_numbers", "description": "Add two numbers.",
                                           "parameters": {"type": "object",
                                                          "properties": {"a": {"type": "number"},
                                                                         "b": {"type": "number"}},
                                                          "required": ["a", "b"]}}}]


@pytest.mark.parametrize(("request_text", "parts"), [
    ("What is 7 plus 8?", ["What is 7 plus 8?"]),
    ("Add 2 and 3. Also add 10 and 20.", ["Add 2 and 3.", "add 10 and 20."]),
    ("Weather in Paris and in Tokyo", ["Weather in Paris", "Weather in Tokyo"]),
    ("What is the weather in Lima, and also in Oslo?", ["What is the weather in Lima", "What is the weather in Oslo?"]),
    ("Greet Ana and greet Ben", ["Greet Ana", "greet Ben"]),
    ('Replace "a. b" with "c". Then reverse "x and y"', ['Replace "a. b" with "c".', 'reverse "x and y"']),
    ("Compute 3.5 plus 2.25, then multiply 4 by 5", ["Compute 3.5 plus 2.25", "multiply 4 by 5"]),
])
def test_split_request(request_text, parts):
    assert split_request(request_text) == parts


def test_split_on_a_function_verb():
    assert split_request("Email Ana saying hi and greet Ben", frozenset({"greet"})) == ["Email Ana saying hi",
                                                                                        "greet Ben"]


@pytest.mark.slow
def test_parallel_tool_calls_through_the_openai_client(smollm2):
    openai = pytest.importorskip("openai")
    with BackgroundServer(create_app({"smollm2": smollm2}, api_key="k3y")) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="k3y", max_retries=0)

        def calls(text):
            reply = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": text}],
                                                   tools=TOOLS, tool_choice="required", parallel_tool_calls=True,
                                                   temperature=0)
            assert reply.choices[0].finish_reason == "tool_calls"
            return [(c.function.name, c.function.arguments) for c in reply.choices[0].message.tool_calls]

        assert calls("What is 7 plus 8?") == [("add_numbers", '{"a": 7.0, "b": 8.0}')]
        assert calls("Add 2 and 3. Also add 10 and 20.") == [("add_numbers", '{"a": 2.0, "b": 3.0}'),
                                                             ("add_numbers", '{"a": 10.0, "b": 20.0}')]
        assert calls("Weather in Paris and in Tokyo") == [("get_weather", '{"city": "Paris"}'),
                                                          ("get_weather", '{"city": "Tokyo"}')]
