"""The tools an agent may call: a `FunctionSpec` (what the model sees) and a Python callable (what runs).

Built-in: `calculator` (AST arithmetic), `clock`, the course's five functions, and `kb_search` (the
workspace's knowledge base). User tools come from a Python module: every public function it defines,
described by its type hints and docstring (pytools.py).

A tool runs with a time limit; an exception or a timeout becomes the result text the model reads
("error: ..."), so a failing tool never stops the loop.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_playground.agent.calculator import calculate
from llm_playground.agent.pytools import spec_from_function
from llm_playground.errors import InputError
from llm_playground.functions.builtin import BUILTIN, module_functions
from llm_playground.functions.schema import FunctionSpec, load_functions

DEFAULT_TIMEOUT_S = 10.0
MAX_RESULT_CHARS = 2000  # what goes back into a small model's context


@dataclass(frozen=True)
class Tool:
    spec: FunctionSpec
    function: Callable[..., Any]
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class ToolResult:
    value: Any
    text: str  # what the model reads
    error: str | None
    ms: float


# No example expression in the description: the 135M model copied it ("12 * (3 + 4)") into its calls.
def calculator(expression: str) -> float | int:
    """A calculator: add, subtract, multiply or divide numbers, powers and percentages; evaluates an arithmetic
    expression and returns the number.

    Args:
        expression: the arithmetic to compute, with numbers and + - * / ** ( ) sqrt
    """
    return calculate(expression)


def clock() -> str:
    """The current date and time in UTC (ISO 8601), and the day of the week."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return f"{now.isoformat()} ({now.strftime('%A')})"


def _course_tools() -> list[Tool]:
    from importlib import resources

    text = (resources.files("llm_playground.functions") / "examples" / "functions_definition.json").read_text()
    return [Tool(spec, BUILTIN[spec.name]) for spec in load_functions(text)]


def builtin_tools() -> dict[str, Tool]:
    tools = [Tool(spec_from_function(calculator), calculator), Tool(spec_from_function(clock), clock),
             *_course_tools()]
    return {tool.name: tool for tool in tools}


def module_tools(path: Path) -> dict[str, Tool]:
    """Every public function of a Python module, as a tool (an import failure is an InputError)."""
    functions = module_functions(Path(path))
    if not functions:
        raise InputError(f"{path} defines no public functions", "define at least one def without a leading _")
    return {name: Tool(spec_from_function(fn, str(path)), fn) for name, fn in functions.items()}


def select_tools(names: Sequence[str] = ("builtin",), modules: Sequence[Path] = (),
                 extra: Sequence[Tool] = ()) -> list[Tool]:
    """`builtin` (all built-in tools), tool names among them, plus every function of each module."""
    available = builtin_tools()
    chosen: dict[str, Tool] = {}
    for name in names:
        if name == "builtin":
            chosen.update(available)
        elif name in available:
            chosen[name] = available[name]
        else:
            raise InputError(f"unknown tool {name!r}", f"use builtin, a .py module, or one of: {', '.join(available)}")
    for path in modules:
        chosen.update(module_tools(Path(path)))
    for tool in extra:
        chosen[tool.name] = tool
    if not chosen:
        raise InputError("no tools to use", "pass --tools builtin or a module.py")
    return list(chosen.values())


def run_tool(tool: Tool, arguments: dict[str, Any]) -> ToolResult:
    """Run one call in a daemon thread with a time limit; the result or the error as text, never raised.

    A tool that overruns is abandoned (Python cannot kill a thread): its thread finishes in the background."""
    import time

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = tool.function(**arguments)
            box["text"] = result_text(box["value"])  # may fail too (a value json cannot write)
        except Exception as exc:  # the tool failed: the model reads why
            box["error"] = f"{type(exc).__name__}: {exc}"

    start = time.perf_counter()
    thread = threading.Thread(target=target, name=f"tool-{tool.name}", daemon=True)
    thread.start()
    thread.join(tool.timeout_s)
    ms = (time.perf_counter() - start) * 1000
    if thread.is_alive():
        error = f"timed out after {tool.timeout_s:g} s"
        return ToolResult(None, f"error: {error}", error, ms)
    if "error" in box:
        return ToolResult(None, f"error: {box['error']}", box["error"], ms)
    return ToolResult(box.get("value"), box["text"], None, ms)


def result_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " …"
