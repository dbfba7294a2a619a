"""Function calls measured on BFCL-format file pairs, with BFCL's matching rules.

The Berkeley Function Calling Leaderboard keeps a category in two files: questions (one JSON object a line:
`id`, `question` — a string, a list of messages or a list of turns — and `function`, the definitions with
BFCL's type names `dict`, `float`, `tuple`, `any`) and possible answers (`id`, `ground_truth`: a list of
`{function name: {argument: [acceptable values]}}`, where `""` in a list means the argument may be left
out). Items without a possible answer are "irrelevance" items: the right answer is no call.

Matching follows BFCL's AST checker: the name must be the answer's; every argument the call writes must
be in the answer; an argument the answer lists without `""` must be there; values match one acceptable
value by type (an integer is accepted for a float), strings compared after BFCL's standardisation
(lower case, without spaces and `,./-_*^`, quotes unified) unless `strict`; lists element by element;
objects key by key. Several answers (parallel) must be matched one to one by the calls, in any order.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_playground.errors import InputError
from llm_playground.functions.schema import FunctionSpec, load_functions

_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": "string", "int": "integer",
               "str": "string", "bool": "boolean", "list": "array"}
_STANDARDIZE = re.compile(r"[ ,./\-_*^]")


@dataclass
class BfclItem:
    id: str
    messages: list[dict[str, str]]
    tools: list[dict[str, Any]]  # OpenAI tools format
    answers: list[dict[str, dict[str, list[Any]]]] | None  # None: no function fits (irrelevance)

    @property
    def kind(self) -> str:
        if not self.answers:
            return "irrelevance"
        return "parallel" if len(self.answers) > 1 else "single"


def _lines(path: Path, what: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"{what} file {path} not found", f"pass --{what} FILE (BFCL format, one JSON object a line)")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines()
                                                                       if line.strip()]
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not JSON Lines nor a JSON list ({exc})", "fix the file") from None
    if not all(isinstance(item, dict) and "id" in item for item in data):
        raise InputError(f"{path}: every item must be an object with an 'id'", "fix the file")
    return data


def to_openai(function: dict[str, Any]) -> dict[str, Any]:
    """A BFCL function definition as an OpenAI tool (BFCL's type names turned into JSON Schema's)."""
    def convert(schema: Any) -> Any:
        if not isinstance(schema, dict):
            return schema
        out = {k: convert(v) if k in ("items", "additionalProperties") else v for k, v in schema.items()}
        if isinstance(out.get("type"), str):
            out["type"] = _BFCL_TYPES.get(out["type"], out["type"])
        if isinstance(out.get("properties"), dict):
            out["properties"] = {k: convert(v) for k, v in out["properties"].items()}
        return out
    parameters = convert(function.get("parameters") or {"type": "dict"})
    return {"type": "function", "function": {"name": function.get("name"),
                                             "description": function.get("description", ""), "parameters": parameters}}


def _messages(question: Any) -> list[dict[str, str]]:
    if isinstance(question, str):
        return [{"role": "user", "content": question}]
    if isinstance(question, list) and question and isinstance(question[0], list):
        question = question[-1]  # the last turn (single-turn categories have one)
    if isinstance(question, list) and all(isinstance(m, dict) and "content" in m for m in question):
        return [{"role": str(m.get("role", "user")), "content": str(m["content"])} for m in question]
    raise InputError("a BFCL question must be a string or a list of messages", "fix the questions file")


def read_bfcl(questions: Path, answers: Path | None = None) -> list[BfclItem]:
    truth = {str(a["id"]): a.get("ground_truth") for a in _lines(answers, "answers")} if answers else {}
    items = []
    for raw in _lines(questions, "questions"):
        functions = raw.get("function", [])
        functions = [functions] if isinstance(functions, dict) else functions
        answer = truth.get(str(raw["id"]))
        if isinstance(answer, dict):
            answer = [answer]
        _check_item(raw["id"], functions, answer)
        items.append(BfclItem(str(raw["id"]), _messages(raw.get("question")), [to_openai(f) for f in functions],
                              answer or None))
    return items


def _check_item(item_id: Any, functions: Any, answer: Any) -> None:
    """The shapes the matcher relies on, so that a malformed file is one line, not a traceback."""
    if not isinstance(functions, list) or not all(isinstance(f, dict) and isinstance(f.get("name"), str)
                                                  for f in functions):
        raise InputError(f"item {item_id!r}: 'function' must be a list of function objects with a name",
                         "fix the questions file")
    if answer is not None and not (isinstance(answer, list) and all(
            isinstance(a, dict) and len(a) == 1 and all(
                isinstance(params, dict) and all(isinstance(v, list) for v in params.values())
                for params in a.values()) for a in answer)):
        raise InputError(f"item {item_id!r}: each ground_truth call must be {{NAME: {{PARAMETER: [values]}}}}",
                         "fix the answers file")


def write_bfcl(items: Iterable[BfclItem], questions: Path, answers: Path) -> None:
    """Items as a BFCL file pair (`dict` for object, `float` for number, as BFCL writes them)."""
    def bfcl_schema(schema: Any) -> Any:
        if not isinstance(schema, dict):
            return schema
        back = {"object": "dict", "number": "float"}
        out = {k: bfcl_schema(v) if k == "items" else v for k, v in schema.items()}
        if isinstance(out.get("type"), str):
            out["type"] = back.get(out["type"], out["type"])
        if isinstance(out.get("properties"), dict):
            out["properties"] = {k: bfcl_schema(v) for k, v in out["properties"].items()}
        return out
    q_lines, a_lines = [], []
    for item in items:
        functions = [{**t["function"], "parameters": bfcl_schema(t["function"]["parameters"])} for t in item.tools]
        q_lines.append(json.dumps({"id": item.id, "question": [item.messages], "function": functions},
                                  ensure_ascii=False))
        if item.answers:
            a_lines.append(json.dumps({"id": item.id, "ground_truth": item.answers}, ensure_ascii=False))
    questions.write_text("".join(line + "\n" for line in q_lines), encoding="utf-8")
    answers.write_text("".join(line + "\n" for line in a_lines), encoding="utf-8")


# ---------------------------------------------------------------- matching
def _standardize(text: str) -> str:
    return _STANDARDIZE.sub("", text).lower().replace("'", '"')


def value_matches(value: Any, acceptable: Any, schema: dict[str, Any] | None, strict: bool) -> bool:
    kind = (schema or {}).get("type")
    if isinstance(acceptable, bool) or isinstance(value, bool):
        return type(acceptable) is type(value) and value == acceptable
    if isinstance(acceptable, (int, float)):
        if kind == "integer" and not isinstance(value, int):
            return False
        return isinstance(value, (int, float)) and abs(float(value) - float(acceptable)) <= 1e-9 * max(
            1.0, abs(float(acceptable)))
    if isinstance(acceptable, str):
        return isinstance(value, str) and (value == acceptable if strict else _standardize(value) == _standardize(
            acceptable))
    if isinstance(acceptable, list):
        items = (schema or {}).get("items")
        return isinstance(value, list) and len(value) == len(acceptable) and all(
            value_matches(v, a, items, strict) for v, a in zip(value, acceptable, strict=True))
    if isinstance(acceptable, dict):
        if not isinstance(value, dict):
            return False
        properties = (schema or {}).get("properties", {})
        for key, want in acceptable.items():
            options = want if isinstance(want, list) else [want]  # BFCL: each key's acceptable values
            if key not in value:
                if "" not in options:
                    return False
                continue
            if not any(value_matches(value[key], o, properties.get(key), strict) for o in options if o != ""):
                return False
        return all(key in acceptable for key in value)
    return value == acceptable


def call_problems(name: str, arguments: dict[str, Any], answer: dict[str, dict[str, list[Any]]],
                  spec: FunctionSpec | None, strict: bool) -> list[str]:
    """Why a call does not match one possible answer (empty: it matches)."""
    want_name, wanted = next(iter(answer.items()))
    if name != want_name:
        return [f"function {name!r} instead of {want_name!r}"]
    properties = spec.properties if spec else {}
    problems = []
    for key, value in arguments.items():
        if key not in wanted:
            problems.append(f"unexpected {key}={value!r}")
        elif not any(value_matches(value, o, properties.get(key), strict) for o in wanted[key] if o != ""):
            problems.append(f"{key}={value!r} instead of {[o for o in wanted[key] if o != '']!r}")
    problems += [f"{key} missing" for key, options in wanted.items() if key not in arguments and "" not in options]
    return problems


def match_calls(calls: list[tuple[str, dict[str, Any]]], answers: list[dict[str, dict[str, list[Any]]]],
                specs: dict[str, FunctionSpec], strict: bool) -> list[str]:
    """Problems of a list of calls against a list of possible answers, matched one to one in any order."""
    if len(calls) != len(answers):
        return [f"{len(calls)} call(s) instead of {len(answers)}"]
    remaining = list(range(len(answers)))
    problems: list[str] = []
    for name, arguments in calls:
        found = next((i for i in remaining if not call_problems(name, arguments, answers[i], specs.get(name),
                                                                strict)), None)
        if found is None:
            best = min(remaining, key=lambda i: len(call_problems(name, arguments, answers[i], specs.get(name),
                                                                  strict)))
            problems += call_problems(name, arguments, answers[best], specs.get(name), strict)
            remaining.remove(best)
        else:
            remaining.remove(found)
    return problems


# ---------------------------------------------------------------- running
@dataclass
class BfclReport:
    totals: Counter = field(default_factory=Counter)
    correct: Counter = field(default_factory=Counter)
    valid: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)

    def pct(self, kind: str) -> float:
        return 100.0 * self.correct[kind] / max(1, self.totals[kind])

    def to_dict(self) -> dict[str, Any]:
        calls = sum(self.totals.values())
        return {"total": calls, "valid_pct": round(100.0 * self.valid / max(1, calls), 1),
                **{f"{k}_pct": round(self.pct(k), 1) for k in sorted(self.totals)},
                "per_kind": {k: {"correct": self.correct[k], "total": n} for k, n in sorted(self.totals.items())},
                "seconds_per_call": round(self.seconds / max(1, calls), 3),
                "cpu_seconds_per_call": round(self.cpu_seconds / max(1, calls), 3), "failures": self.failures}


def evaluate_bfcl(model: Any, items: list[BfclItem], *, strict: bool = False, tool_choice: str | None = None,
                  on_done: Callable[[int, dict], None] | None = None, **options: Any) -> BfclReport:
    """Run every item through `call_functions` and match it. `tool_choice=None` runs each item as BFCL's
    categories are run: "auto" for irrelevance items, "required" otherwise (parallel ones with
    `parallel=True`); give "auto" to run every item under "auto"."""
    from llm_playground.errors import PlaygroundError
    from llm_playground.functions.calling import call_functions

    report = BfclReport()
    start, cpu = time.perf_counter(), time.process_time()
    for index, item in enumerate(items):
        specs = {s.name: s for s in load_functions(item.tools)}
        choice = tool_choice or ("auto" if item.kind == "irrelevance" else "required")
        report.totals[item.kind] += 1
        try:
            outcome = call_functions(model, item.messages, list(specs.values()), tool_choice=choice,
                                     parallel=item.kind == "parallel", **options)
            calls = [(c.name, c.arguments) for c in outcome.calls]
            report.valid += bool(outcome.stats.valid)
        except PlaygroundError as exc:
            calls, outcome = [], None
            problems = [f"error: {exc}"]
        else:
            problems = match_calls(calls, item.answers or [], specs, strict)
        if not problems:
            report.correct[item.kind] += 1
        else:
            report.failures.append({"id": item.id, "kind": item.kind, "request": item.messages[-1]["content"],
                                    "calls": [{"name": n, "arguments": a} for n, a in calls], "problems": problems})
        entry = {"id": item.id, "kind": item.kind, "calls": [{"name": n, "arguments": a} for n, a in calls],
                 "correct": not problems}
        report.results.append(entry)
        if on_done is not None:
            on_done(index, entry)
    report.seconds, report.cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    return report
