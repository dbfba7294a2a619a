"""Accuracy of calls against expected answers: the name, then each argument compared by declared type."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_playground.errors import InputError
from llm_playground.functions.schema import FunctionSpec


@dataclass
class Evaluation:
    total: int = 0
    exact: int = 0
    name_correct: int = 0
    per_function: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.exact / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "exact": self.exact, "name_correct": self.name_correct,
                "accuracy": round(self.accuracy, 4),
                "per_function": {k: {"exact": v[0], "total": v[1]} for k, v in sorted(self.per_function.items())},
                "failures": self.failures}


def same_value(expected: Any, actual: Any, schema: dict[str, Any] | None) -> bool:
    kind = (schema or {}).get("type")
    if kind == "number" or (kind is None and isinstance(expected, float)):
        return (isinstance(actual, float) and not isinstance(actual, bool)
                and math.isclose(actual, float(expected), rel_tol=1e-9, abs_tol=1e-12))
    if kind == "integer":
        return type(actual) is int and actual == expected
    return type(actual) is type(expected) and actual == expected


def _read(path: Path, what: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"{what} file {path} not found", f"pass --{what} FILE")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc})", "fix the file") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise InputError(f"{path} must be a JSON list of objects", "fix the file")
    return data


def evaluate_calls(results: list[dict[str, Any]] | Path, expected: list[dict[str, Any]] | Path,
                   functions: list[FunctionSpec] | None = None) -> Evaluation:
    results = _read(results, "results") if isinstance(results, Path) else results
    expected = _read(expected, "expected") if isinstance(expected, Path) else expected
    by_prompt = {r.get("prompt"): r for r in results}
    specs = {f.name: f for f in functions or []}
    report = Evaluation()
    for want in expected:
        got = by_prompt.get(want.get("prompt"), {})
        name = want.get("name")
        report.total += 1
        report.per_function[str(name)][1] += 1
        problems = []
        if got.get("name") != name:
            problems.append(f"name {got.get('name')!r} instead of {name!r}")
        else:
            report.name_correct += 1
            properties = specs[name].properties if name in specs else {}
            actual = got.get("parameters", {})
            for key, value in (want.get("parameters") or {}).items():
                if key not in actual:
                    problems.append(f"{key} missing")
                elif not same_value(value, actual[key], properties.get(key)):
                    problems.append(f"{key}={actual[key]!r} instead of {value!r}")
            problems += [f"unexpected {key}" for key in actual if key not in (want.get("parameters") or {})]
        if problems:
            report.failures.append({"prompt": want.get("prompt"), "problems": problems})
        else:
            report.exact += 1
            report.per_function[str(name)][0] += 1
    return report
