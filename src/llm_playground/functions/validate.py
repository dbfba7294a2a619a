"""Pydantic validation of a decoded call: the grammar already guarantees it, this proves it.

Each function gets a Pydantic model built from its parameter schema; `number` arguments come out as
floats (the course writes `2.0`, never `2`) and `integer` ones as ints.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    create_model,
)

from llm_playground.functions.schema import FunctionSpec


class FunctionCallResult(BaseModel):
    """One output entry of the course format: the prompt, the function's name, its arguments."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = ""
    name: str
    parameters: dict[str, Any]


# Strict: the grammar writes JSON types exactly, so "2" for a number is a bug to report, not to coerce.
Number = Annotated[StrictInt | StrictFloat, AfterValidator(float)]
_SCALARS: dict[str, Any] = {"number": Number, "integer": StrictInt, "string": StrictStr, "boolean": StrictBool,
                            "array": list, "object": dict, "null": type(None)}


def _annotation(schema: dict[str, Any]) -> Any:
    if "enum" in schema:
        return Literal[tuple(schema["enum"])]
    kind: Any = schema.get("type")
    if isinstance(kind, list):
        options = tuple(_SCALARS.get(k, Any) for k in kind)
        return options[0] if len(options) == 1 else _union(options)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return list[_annotation(schema["items"])]  # type: ignore[misc]  # a type built at run time, for pydantic
    return _SCALARS.get(kind, Any)


def _union(options: tuple[Any, ...]) -> Any:
    from typing import Union

    return Union[options]  # noqa: UP007 - built at run time from a tuple


@lru_cache(maxsize=512)
def _model_for(spec_json: str) -> type[BaseModel]:
    spec = FunctionSpec.model_validate_json(spec_json)
    fields: dict[str, Any] = {}
    for name, schema in spec.properties.items():
        default = ... if name in spec.required else schema.get("default")
        fields[name] = (_annotation(schema), Field(default))
    return create_model(f"Args_{spec.name}", __config__=ConfigDict(extra="forbid"), **fields)


def validate_call(spec: FunctionSpec, arguments: Any, prompt: str = "") -> FunctionCallResult | None:
    """The validated call, or None when the arguments do not fit the declared types."""
    if not isinstance(arguments, dict):
        return None
    try:
        args = _model_for(spec.model_dump_json()).model_validate(arguments)
    except ValidationError:
        return None
    values = args.model_dump(exclude_unset=False)
    values = {k: v for k, v in values.items() if k in arguments or v is not None}
    return FunctionCallResult(prompt=prompt, name=spec.name, parameters=values)
