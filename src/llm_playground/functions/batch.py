"""A batch of requests → the course's output file, with per-call measurements and a summary.

One failing request is reported in its entry (`error`) and the batch goes on; the output is written
atomically at the end, and after every call, so an interrupted batch keeps what succeeded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_playground.errors import InputError, PlaygroundError
from llm_playground.functions.builtin import execute
from llm_playground.functions.calling import CallContext, CallOutcome, call_functions
from llm_playground.functions.schema import FunctionSpec
from llm_playground.model.base import LanguageModel
from llm_playground.workspace import atomic_write_text


def load_prompts(path: Path) -> list[str]:
    if not path.is_file():
        raise InputError(f"prompts file {path} not found", 'pass --input FILE (a JSON list of {"prompt": ...})')
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc})", 'fix the file: a JSON list of {"prompt": ...}') from None
    if not isinstance(data, list):
        raise InputError(f"{path} must be a JSON list", 'wrap the prompts in [ {"prompt": ...}, ... ]')
    prompts = []
    for i, item in enumerate(data):
        if isinstance(item, str):
            prompts.append(item)
        elif isinstance(item, dict) and isinstance(item.get("prompt"), str):
            prompts.append(item["prompt"])
        else:
            raise InputError(f"{path}, item {i}: field 'prompt' is missing or not a string", "give each item a prompt")
    return prompts


@dataclass
class BatchReport:
    entries: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[CallOutcome | None] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def valid_pct(self) -> float:
        return 100.0 * sum(o is not None and o.stats.valid for o in self.outcomes) / max(1, len(self.outcomes))

    def summary(self) -> dict[str, Any]:
        done = [o for o in self.outcomes if o is not None]
        tokens = sum(o.stats.tokens for o in done)
        forward = sum(o.stats.forward_ms for o in done)
        mask_steps = sum(len([s for s in o.steps if not s["forced"]]) for o in done)
        return {"calls": len(self.outcomes), "failed": len(self.outcomes) - len(done),
                "valid_pct": round(self.valid_pct, 1), "seconds": round(self.seconds, 2),
                "calls_per_s": round(len(self.outcomes) / self.seconds, 3) if self.seconds else 0.0,
                "mean_ms_per_call": round(1000 * self.seconds / max(1, len(self.outcomes)), 1),
                "tokens": tokens, "forced_tokens": sum(o.stats.forced_tokens for o in done),
                "forward_ms_per_token": round(forward / max(1, tokens), 2),
                "mask_ms_per_step": round(sum(o.stats.mask_ms for o in done) / max(1, mask_steps), 4)}


def entry_for(prompt: str, outcome: CallOutcome, parallel: bool, allow_none: bool,
              implementations: dict | None) -> dict[str, Any]:
    calls: list[dict[str, Any]] = [{"name": c.name, "parameters": c.arguments} for c in outcome.calls]
    if not outcome.stats.valid:
        return {"prompt": prompt, "name": None, "parameters": {}, "error": f"invalid output: {outcome.text!r}"}
    if implementations is not None:
        for call in calls:
            value, error = execute(implementations, call["name"], call["parameters"])
            call.update({"result": value} if error is None else {"error": error})
    if parallel:
        return {"prompt": prompt, "calls": calls}
    if not calls:
        return {"prompt": prompt, "name": None, "parameters": {}}
    return {"prompt": prompt, **calls[0]}


def run_batch(model: LanguageModel, functions: Sequence[FunctionSpec], prompts: Sequence[str], *,
              output: Path | None = None, parallel: bool = False, allow_none: bool = False,
              implementations: dict | None = None, on_done: Callable[[int, dict], None] | None = None,
              **options: Any) -> BatchReport:
    report = BatchReport()
    start = time.perf_counter()
    context = CallContext.shared(model, functions)
    for index, prompt in enumerate(prompts):
        try:
            outcome = call_functions(model, [{"role": "user", "content": prompt}], functions, parallel=parallel,
                                     allow_none=allow_none, context=context, **options)
            entry = entry_for(prompt, outcome, parallel, allow_none, implementations)
        except PlaygroundError as exc:
            outcome, entry = None, {"prompt": prompt, "name": None, "parameters": {}, "error": str(exc)}
        report.outcomes.append(outcome)
        report.entries.append(entry)
        if output is not None:
            atomic_write_text(output, json.dumps(report.entries, indent=2, ensure_ascii=False) + "\n")
        if on_done is not None:
            on_done(index, entry)
    report.seconds = time.perf_counter() - start
    return report
