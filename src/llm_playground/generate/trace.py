"""Per-token traces as JSON Lines: a header (model, params, prompt, versions), then one line per step.

`replay` re-runs the header's request and reports whether every token matches.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from llm_playground import __version__
from llm_playground.errors import InputError
from llm_playground.generate.loop import Generation, StepEvent
from llm_playground.generate.params import SamplingParams
from llm_playground.model.base import LanguageModel


def _versions() -> dict[str, str]:
    import numpy
    import torch

    return {"llm_playground": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


class TraceWriter:
    def __init__(self, path: Path, generation: Generation, prompt_text: str, model_spec: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tokenizer = generation.model.tokenizer
        self._handle: IO[str] = self.path.open("w", encoding="utf-8")
        params = generation.params.model_dump(mode="json") | {"seed": generation.seed}
        self._write({"type": "header", "model": model_spec, "model_info": vars(generation.model.info),
                     "params": params, "prompt": prompt_text, "prompt_ids": generation.prompt_ids,
                     "versions": _versions()})

    def _write(self, record: dict) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")

    def step(self, event: StepEvent) -> None:
        self._write({"type": "step", "index": event.index, "step": event.step, "token_id": event.token_id,
                     "token": self.tokenizer.token_text(event.token_id), "text": event.text,
                     "prob": round(event.prob, 6), "forced": event.forced,
                     "top": [{"id": i, "token": self.tokenizer.token_text(i), "prob": round(p, 6)}
                             for i, p in event.top_alternatives],
                     "ms": round(event.ms, 3)})

    def close(self) -> None:
        self._handle.close()


def traced(generation: Generation, path: Path | None, prompt_text: str, model_spec: str) -> Iterator[StepEvent]:
    """The generation's events, each also written to `path` when one is given."""
    if path is None:
        yield from generation
        return
    writer = TraceWriter(path, generation, prompt_text, model_spec)
    try:
        for event in generation:
            writer.step(event)
            yield event
    finally:
        writer.close()


@dataclass(frozen=True)
class ReplayReport:
    model: str
    total: int
    matched: int
    first_mismatch: dict | None

    @property
    def ok(self) -> bool:
        return self.first_mismatch is None


def read_trace(path: Path) -> tuple[dict, list[dict]]:
    try:
        lines = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise InputError(f"cannot read trace {path}: {exc.strerror}", "check the path") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not a JSON Lines trace (line {exc.lineno})",
                         "pass a file written by --trace") from exc
    if not lines or lines[0].get("type") != "header":
        raise InputError(f"{path} has no trace header", "pass a file written by --trace")
    steps = [line for line in lines[1:] if line.get("type") == "step" and line["step"] >= 0]
    return lines[0], steps


def replay(path: Path, load: Callable[[str], LanguageModel]) -> ReplayReport:
    """Re-run the traced request; a mismatch names the first step where the tokens differ."""
    header, steps = read_trace(path)
    model = load(header["model"])
    params = SamplingParams.create(**header["params"])
    expected: dict[tuple[int, int], int] = {}
    for step in steps:
        expected.setdefault((step["index"], step["step"]), step["token_id"])
    generation = Generation(model, header["prompt_ids"], params, alternatives=0)
    actual: dict[tuple[int, int], int] = {}
    for event in generation:
        actual.setdefault((event.index, event.step), event.token_id)
    matched, mismatch = 0, None
    for key in sorted(expected.keys() | actual.keys()):
        if expected.get(key) == actual.get(key):
            matched += 1
        elif mismatch is None:
            mismatch = {"index": key[0], "step": key[1], "expected": expected.get(key), "actual": actual.get(key)}
    return ReplayReport(header["model"], len(expected), matched, mismatch)
