"""Python functions → tool schemas: the type hints give the JSON Schema (via Pydantic), the docstring the
description, and a Google-style `Args:` section each parameter's description.

    def convert(amount: float, unit: Literal["km", "mi"] = "km") -> float:
        '''Convert a distance to metres.

        Args:
            amount: the distance
            unit: its unit
        '''
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter

from llm_playground.errors import InputError
from llm_playground.functions.schema import FunctionSpec, parse_function

_SECTION = re.compile(r"^\s*(Args|Arguments|Parameters|Returns|Raises|Examples?)\s*:\s*$")


def spec_from_function(function: Callable[..., Any], where: str = "") -> FunctionSpec:
    name = function.__name__
    where = f"{where}: {name}" if where else name
    signature = inspect.signature(function)
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise InputError(f"{where} takes *args or **kwargs, which a tool schema cannot describe",
                             "give the tool named parameters only")
        if parameter.annotation is inspect.Parameter.empty:
            raise InputError(f"{where}: parameter {parameter.name!r} has no type hint",
                             f"annotate it, e.g. {parameter.name}: str")
    try:
        schema = TypeAdapter(function).json_schema()  # type: ignore[arg-type]  # pydantic reads the signature
    except Exception as exc:  # a hint Pydantic cannot turn into JSON Schema (a custom class, say)
        raise InputError(f"{where}: its type hints have no JSON Schema ({exc})",
                         "use str, int, float, bool, list[...], dict, Literal[...] or Optional") from None
    description, arguments = _docstring(inspect.getdoc(function) or "")
    properties = {}
    for arg, prop in schema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        if arg in arguments:
            prop["description"] = arguments[arg]
        properties[arg] = prop
    parameters = {"type": "object", "properties": properties, "required": schema.get("required", [])}
    return parse_function({"type": "function", "function": {"name": name, "description": description,
                                                            "parameters": parameters}}, where)


def _docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(the summary paragraph, {parameter: description}) from a Google-style docstring."""
    summary: list[str] = []
    arguments: dict[str, str] = {}
    section = None
    for line in doc.splitlines():
        match = _SECTION.match(line)
        if match:
            section = match.group(1)
            continue
        if section is None:
            if not line.strip() and summary:
                section = "rest"
            elif line.strip():
                summary.append(line.strip())
        elif section in ("Args", "Arguments", "Parameters"):
            item = re.match(r"^\s*(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$", line)
            if item:
                arguments[item.group(1)] = item.group(3).strip()
    return " ".join(summary), arguments
