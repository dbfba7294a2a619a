"""A templated final answer, the visible help for small models (`--answer model|template`).

When a task needed one tool call and its result is a scalar (a number, a boolean or a short string),
the answer can be written from a template instead of by the model: "17 * 23 = 391" reads better than
what a 135M model makes of a `tool` turn. `template` uses it exactly then, and the model otherwise.
Measured both ways in benchmarks/agent.py (docs/agent.md).
"""

from __future__ import annotations

from typing import Any

MODES = ("model", "template")
MAX_SCALAR_CHARS = 120


def is_scalar(value: Any) -> bool:
    return (isinstance(value, bool | int | float)
            or (isinstance(value, str) and len(value) <= MAX_SCALAR_CHARS and "\n" not in value))


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e15 else repr(value)
    return str(value)


def templated_answer(tool: str, arguments: dict[str, Any], value: Any) -> str | None:
    """The answer from one call's scalar result, or None when the template does not apply."""
    if not is_scalar(value):
        return None
    shown = format_value(value)
    if tool == "calculator" and "expression" in arguments:
        return f"{arguments['expression']} = {shown}"
    if tool == "clock":
        return f"It is now {shown} (UTC)."
    if isinstance(value, str):
        return shown  # a tool's text ("Hello, Ada!") is already an answer
    return f"The result is {shown}."
