"""Function definitions in the three formats users bring, read into one `FunctionSpec`.

- the course format: `{name, description, parameters: {arg: {type}}, returns: {type}}`;
- the course's older format: `{fn_name, args_names, args_types (Python names), return_type}`;
- the OpenAI tools format: `{"type": "function", "function": {name, description, parameters: JSON Schema}}`.

A `FunctionSpec` keeps its parameters as a JSON Schema object: that is what the grammar is built from
and what the final call is validated against. Errors name the file, the item and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from llm_playground.errors import InputError

JSON_TYPES = ("number", "integer", "string", "boolean", "array", "object", "null")
_PYTHON_TYPES = {"int": "integer", "float": "number", "str": "string", "bool": "boolean", "list": "array",
                 "dict": "object", "none": "null", "nonetype": "null"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")


class FunctionSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any]  # a JSON Schema object: {"type": "object", "properties", "required"}
    returns: dict[str, Any] | None = None

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        return self.parameters.get("properties", {})

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required", []))

    def signature(self) -> str:
        """`fn_add_numbers(a: number, b: number) -> number`, for prompts and tables."""
        args = ", ".join(f"{k}: {_type_name(v)}" + ("" if k in self.required else "?")
                         for k, v in self.properties.items())
        returns = f" -> {_type_name(self.returns)}" if self.returns else ""
        return f"{self.name}({args}){returns}"


def _type_name(schema: dict[str, Any]) -> str:
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array" and "items" in schema:
        return f"array[{_type_name(schema['items'])}]"
    return kind if isinstance(kind, str) else " | ".join(kind)


def load_functions(source: Path | str | Sequence[Any]) -> list[FunctionSpec]:
    """Definitions from a JSON file path, a JSON string or already-parsed data, in any supported format."""
    where = "the definitions"
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("[", "{"))):
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise InputError(f"function definitions file {path} not found",
                             "pass --functions FILE (a JSON list of function definitions)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{path} is not valid JSON ({exc})", "fix the file: it must be a JSON list") from None
    elif isinstance(source, str):
        try:
            data = json.loads(source)
        except json.JSONDecodeError as exc:
            raise InputError(f"the definitions are not valid JSON ({exc})", "give a JSON list of functions") from None
    else:
        data = source
    if isinstance(data, dict) and isinstance(data.get("tools"), list):
        data = data["tools"]
    if not isinstance(data, list) or not data:
        raise InputError(f"{where} must be a non-empty JSON list of functions", "wrap the definitions in [ ... ]")
    specs = [parse_function(item, f"{where}, item {i}") for i, item in enumerate(data)]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise InputError(f"{where}: the function {spec.name!r} is defined twice", "give each function one name")
        seen.add(spec.name)
    return specs


def specs_from_openai_tools(tools: Sequence[Any]) -> list[FunctionSpec]:
    """The `tools` of an OpenAI request (only `type: function` tools exist)."""
    return load_functions(list(tools))


def parse_function(item: Any, where: str) -> FunctionSpec:
    if not isinstance(item, dict):
        raise InputError(f"{where} is not an object", "each function is a JSON object with a name")
    if item.get("type") == "function" and isinstance(item.get("function"), dict):
        return _from_openai(item["function"], where)
    if "fn_name" in item:
        return _from_old_course(item, where)
    if isinstance(item.get("parameters"), dict) and item["parameters"].get("type") == "object":
        return _from_openai(item, where)  # a bare OpenAI function object
    return _from_course(item, where)


def _name(item: dict, key: str, where: str) -> str:
    name = item.get(key)
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(f"{where}: field {key!r} must be a function name (letters, digits, _), got {name!r}",
                         "fix the name")
    return name


def _from_course(item: dict, where: str) -> FunctionSpec:
    name = _name(item, "name", where)
    where = f"{where} ({name})"
    raw = item.get("parameters", {})
    if not isinstance(raw, dict):
        raise InputError(f"{where}: field 'parameters' must be an object of {{arg: {{type}}}}", "fix 'parameters'")
    properties = {arg: _check_schema(schema, f"{where}, parameter {arg!r}") for arg, schema in raw.items()}
    returns = item.get("returns")
    if returns is not None:
        returns = _check_schema(returns, f"{where}, field 'returns'")
    return FunctionSpec(name=name, description=str(item.get("description", "")), returns=returns,
                        parameters={"type": "object", "properties": properties, "required": list(properties)})


def _from_old_course(item: dict, where: str) -> FunctionSpec:
    name = _name(item, "fn_name", where)
    where = f"{where} ({name})"
    names, types = item.get("args_names", []), item.get("args_types", {})
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError(f"{where}: field 'args_names' must be a list of names", "fix 'args_names'")
    if isinstance(types, list):
        types = dict(zip(names, types, strict=False))
    if not isinstance(types, dict):
        raise InputError(f"{where}: field 'args_types' must map each argument to a type", "fix 'args_types'")
    properties = {arg: {"type": _python_type(types.get(arg), f"{where}, argument {arg!r}")} for arg in names}
    returns = item.get("return_type")
    return FunctionSpec(name=name, description=str(item.get("description", item.get("fn_description", ""))),
                        parameters={"type": "object", "properties": properties, "required": names},
                        returns={"type": _python_type(returns, f"{where}, return_type")} if returns else None)


def _python_type(name: Any, where: str) -> str:
    kind = _PYTHON_TYPES.get(str(name).lower()) or (str(name) if name in JSON_TYPES else None)
    if kind is None:
        raise InputError(f"{where}: unknown type {name!r}", f"use one of: {', '.join(_PYTHON_TYPES)}")
    return kind


def _from_openai(function: dict, where: str) -> FunctionSpec:
    name = _name(function, "name", where)
    where = f"{where} ({name})"
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        raise InputError(f"{where}: 'parameters' must be a JSON Schema object", "use {\"type\": \"object\", ...}")
    properties = parameters.get("properties", {})
    if not isinstance(properties, dict):
        raise InputError(f"{where}: 'parameters.properties' must be an object", "fix 'properties'")
    for arg, schema in properties.items():
        _check_schema(schema, f"{where}, parameter {arg!r}")
    required = parameters.get("required", [])
    unknown = [r for r in required if r not in properties]
    if unknown:
        raise InputError(f"{where}: required parameter {unknown[0]!r} is not in 'properties'", "fix 'required'")
    return FunctionSpec(name=name, description=str(function.get("description", "")),
                        parameters={**parameters, "type": "object", "properties": properties,
                                    "required": list(required)})


def _check_schema(schema: Any, where: str) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise InputError(f"{where} must be an object like {{\"type\": \"number\"}}", "fix the type")
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if kind is None and not any(k in schema for k in ("enum", "anyOf", "oneOf", "const", "$ref")):
        raise InputError(f"{where} has no 'type'", f"use one of: {', '.join(JSON_TYPES)}")
    bad = [k for k in kinds if k is not None and k not in JSON_TYPES]
    if bad:
        raise InputError(f"{where}: unknown type {bad[0]!r}", f"use one of: {', '.join(JSON_TYPES)}")
    return schema
