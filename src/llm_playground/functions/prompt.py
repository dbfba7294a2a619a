"""The prompt a function call is decoded from: the chat template, the function list, worked examples.

A 135M model follows a pattern far better than an instruction, so besides the list of functions the
system prompt can show worked examples (request → call). Examples come from the definitions
themselves (an optional `examples` list per function, see `examples.py` for the built-in ones).
"""

from __future__ import annotations

import json
import re
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


def call_messages(messages: Sequence[Message], functions: Sequence[FunctionSpec],
                  examples: Sequence[tuple[str, str]] = ()) -> list[Message]:
    """The conversation with our system prompt first (a user's own system prompt is kept in it), then the
    worked examples as earlier turns, the most similar to the request last (small models copy the
    nearest pattern)."""
    user_system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    request = next((m["content"] for m in reversed(rest) if m["role"] == "user"), "")
    shots: list[Message] = []
    for example_request, call in sorted(examples, key=lambda e: similarity(e[0], request)):
        shots += [{"role": "user", "content": example_request}, {"role": "assistant", "content": call}]
    return [{"role": "system", "content": system_prompt(functions, user_system or None)}, *shots, *rest]


def _words(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2}


def similarity(a: str, b: str) -> float:
    """Shared word stems (Jaccard): cheap, and enough to put the nearest example last."""
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / len(wa | wb) if wa and wb else 0.0


def call_prompt(tokenizer: Tokenizer, messages: Sequence[Message], functions: Sequence[FunctionSpec],
                examples: Sequence[tuple[str, str]] = ()) -> str:
    return render(tokenizer, call_messages(messages, functions, examples))
