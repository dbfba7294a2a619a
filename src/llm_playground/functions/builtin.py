"""Python implementations that `--execute` runs: the course's five example functions, and user modules.

A module passed with `--impl module.py` registers every public function it defines, under its own name.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llm_playground.errors import InputError


def fn_add_numbers(a: float, b: float) -> float:
    return float(a + b)


def fn_greet(name: str) -> str:
    return f"Hello, {name}!"


def fn_reverse_string(s: str) -> str:
    return s[::-1]


def fn_get_square_root(a: float) -> float:
    if a < 0:
        raise ValueError("the square root of a negative number is not real")
    return math.sqrt(a)


def fn_substitute_string_with_regex(source_string: str, regex: str, replacement: str) -> str:
    try:
        return re.sub(regex, replacement, source_string)
    except re.error as exc:
        raise ValueError(f"invalid regex {regex!r}: {exc}") from None


BUILTIN: dict[str, Callable[..., Any]] = {f.__name__: f for f in (
    fn_add_numbers, fn_greet, fn_reverse_string, fn_get_square_root, fn_substitute_string_with_regex)}


def load_implementations(paths: list[Path] | None = None) -> dict[str, Callable[..., Any]]:
    registry = dict(BUILTIN)
    for path in paths or []:
        registry.update(module_functions(Path(path)))
    return registry


def module_functions(path: Path) -> dict[str, Callable[..., Any]]:
    if not path.is_file():
        raise InputError(f"implementation module {path} not found", "pass --impl FILE.py")
    spec = importlib.util.spec_from_file_location(f"llmp_impl_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise InputError(f"{path} is not a Python module", "pass a .py file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise InputError(f"{path} failed to import: {type(exc).__name__}: {exc}", "fix the module") from None
    return {name: fn for name, fn in vars(module).items()
            if inspect.isfunction(fn) and not name.startswith("_") and fn.__module__ == module.__name__}


def execute(registry: dict[str, Callable[..., Any]], name: str, arguments: dict[str, Any]) -> tuple[Any, str | None]:
    """(returned value, None) or (None, the error as one line); a failing function never stops a batch."""
    function = registry.get(name)
    if function is None:
        return None, f"no implementation for {name}"
    try:
        return function(**arguments), None
    except Exception as exc:  # the user's function failed: report it in the entry, keep going
        return None, f"{type(exc).__name__}: {exc}"
