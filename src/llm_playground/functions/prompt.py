"""The prompt a function call is decoded from: the chat template, the instructions, the function list.

Worked examples (request → call) in the prompt were measured and dropped: the 135M model copied the
examples' values instead of the request's. Teaching it the format is the adapter's job (adapter.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llm_playground.functions.schema import FunctionSpec
from llm_playground.generate.prompt import render
from llm_playground.tokenizer.base import Message, Tokenizer

INSTRUCTIONS = ("You translate a user's request into one function call. Answer with JSON only: "
                '{"name": <function name>, "parameters": {<argument>: <value>}}. Copy names, words and '
                "numbers from the request exactly as written.")


def describe_functions(functions: Sequence[FunctionSpec]) -> str:
    return "\n".join(f"- {f.signature()}: {f.description}".rstrip(": ") for f in functions)


def call_json(name: str | None, arguments: dict[str, Any]) -> str:
    """A call as the model writes it: compact JSON, in the course's `name`/`parameters` shape."""
    return json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False, separators=(",", ":"))


def system_prompt(functions: Sequence[FunctionSpec], extra: str | None = None) -> str:
    parts = [INSTRUCTIONS, "", "Functions:", describe_functions(functions)]
    if extra:
        parts += ["", extra]
    return "\n".join(parts)


def call_messages(messages: Sequence[Message], functions: Sequence[FunctionSpec]) -> list[Message]:
    """The conversation with our system prompt first (a user's own system prompt is kept in it)."""
    user_system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    return [{"role": "system", "content": system_prompt(functions, user_system or None)}, *rest]


def call_prompt(tokenizer: Tokenizer, messages: Sequence[Message], functions: Sequence[FunctionSpec]) -> str:
    return render(tokenizer, call_messages(messages, functions))
