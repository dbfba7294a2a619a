"""The pieces every generated example is made of: a function definition in one of the formats users bring,
a request phrased one of many ways, and the call that answers it.

Phrasings come in two lists: `train` and `heldout`. Held-out phrasings (and whole held-out families) never
reach training; the held-out set measures whether the adapter learned the task or the templates.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The public example prompts are the test set: none of their strings or numbers appear in generated data.
FORBIDDEN_WORDS = frozenset({"cat", "dog", "mat", "shrek", "john", "hello", "world", "programming", "fun"})
FORBIDDEN_NUMBERS = frozenset({2, 3, 16, 144, 233, 265, 345, 34, 610})

_PY_TYPES = {"number": "float", "integer": "int", "string": "str", "boolean": "bool"}


@dataclass(frozen=True)
class Example:
    family: str
    definition: dict[str, Any]  # as a user would write it, in one of the three formats
    request: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Phrasings:
    train: Sequence[str]
    heldout: Sequence[str]

    def pick(self, rng: random.Random, heldout: bool) -> str:
        return rng.choice(self.heldout if heldout else self.train)


@dataclass(frozen=True)
class Param:
    names: Sequence[str]  # argument name variants
    kind: str  # number, integer, string, boolean; "numeric" lets the generator choose number or integer


def define(rng: random.Random, names: Sequence[str], descriptions: Sequence[str], params: Sequence[Param],
           returns: str | None) -> tuple[dict[str, Any], list[str], list[str]]:
    """A definition in a random format; returns it with the chosen argument names and JSON types."""
    name = rng.choice(names)
    description = rng.choice(descriptions)
    numeric = rng.choice(("number", "number", "integer"))
    arg_names, kinds = [], []
    for param in params:
        arg = rng.choice([n for n in param.names if n not in arg_names])
        arg_names.append(arg)
        kinds.append(numeric if param.kind == "numeric" else param.kind)
    style = rng.random()
    if style < 0.6:
        definition: dict[str, Any] = {"name": name, "description": description,
                                      "parameters": {a: {"type": k} for a, k in zip(arg_names, kinds, strict=True)}}
        if returns and rng.random() < 0.85:
            definition["returns"] = {"type": returns}
    elif style < 0.75:
        definition = {"fn_name": name, "description": description, "args_names": arg_names,
                      "args_types": {a: _PY_TYPES[k] for a, k in zip(arg_names, kinds, strict=True)}}
        if returns:
            definition["return_type"] = _PY_TYPES.get(returns, returns)
    else:
        definition = {"type": "function", "function": {
            "name": name, "description": description,
            "parameters": {"type": "object", "properties": {a: {"type": k} for a, k in zip(arg_names, kinds,
                                                                                           strict=True)},
                           "required": arg_names}}}
    return definition, arg_names, kinds


def value_for(kind: str, value: Any) -> Any:
    """A value as the call writes it for the declared type (the course writes `number` as a float)."""
    if kind == "number":
        return float(value)
    if kind == "integer":
        return int(value)
    if kind == "string":
        return str(value)
    if kind == "boolean" and isinstance(value, str):
        return value.lower() in ("on", "yes", "true", "enable")
    return value


def number(rng: random.Random, low: int = 1, high: int = 999, decimals: float = 0.0) -> int | float:
    while True:
        value: int | float = rng.randint(low, high)
        if rng.random() < decimals:
            value = round(value + rng.choice((0.5, 0.25, 0.75, 0.1, 0.2, 0.3, 0.9)), 2)
        if value not in FORBIDDEN_NUMBERS:
            return value


def quote(rng: random.Random, text: str) -> str:
    mark = rng.choice(("'", "'", '"')) if "'" not in text else '"'
    return f"{mark}{text}{mark}"
