"""The build flow's state: which stages are done, with sizes and dates, and the command for the next one.

Plain data, so `llmp status` and the web app show the same thing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_playground.data.prepared import load_prepared, read_json_object
from llm_playground.errors import PlaygroundError
from llm_playground.workspace import CHECKPOINT_WEIGHTS, Workspace

READY, MISSING, STALE = "ready", "missing", "stale"


@dataclass(frozen=True)
class Stage:
    key: str  # corpus, tokenizer, processed, checkpoint, app
    title: str
    state: str  # ready, missing or stale
    path: str  # relative to the workspace
    command: str  # what makes the stage (or, for the app, what opens it)
    size_bytes: int | None = None
    modified: str | None = None  # ISO 8601, UTC
    details: str = ""

    @property
    def ready(self) -> bool:
        return self.state == READY


@dataclass(frozen=True)
class RunStatus:
    name: str
    path: str
    checkpoint: str | None  # "best", "last" or None while no checkpoint is written
    modified: str | None
    size_bytes: int
    last_metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.checkpoint is not None


@dataclass(frozen=True)
class PipelineStatus:
    root: str
    stages: list[Stage]
    runs: list[RunStatus]  # newest first

    @property
    def next_stage(self) -> Stage | None:
        """The first stage that is missing or stale: the one to make next."""
        return next((stage for stage in self.stages if not stage.ready), None)

    def as_dict(self) -> dict[str, Any]:
        following = self.next_stage
        return {"root": self.root,
                "stages": [asdict(s) | {"ready": s.ready} for s in self.stages],
                "runs": [asdict(r) | {"ready": r.ready} for r in self.runs],
                "next": None if following is None else {"stage": following.key, "command": following.command}}


def pipeline_status(workspace: Workspace) -> PipelineStatus:
    runs = run_statuses(workspace)
    stages = [_corpus(workspace), _tokenizer(workspace), _processed(workspace), _checkpoint(workspace, runs)]
    stages.append(_app(runs))
    return PipelineStatus(str(workspace.root), stages, runs)


def _corpus(ws: Workspace) -> Stage:
    path, command = ws.corpus_path, "llmp data collect"
    if not path.is_file():
        return Stage("corpus", "raw data", MISSING, ws.relative(path), command)
    manifest = read_json_object(ws.manifest_path)
    details = ""
    if manifest:
        sources = ", ".join(s.get("source", "?") for s in manifest.get("sources", []))
        details = f"{manifest.get('documents', '?')} documents, {_count(manifest.get('characters'))} characters " \
                  f"({sources})"
    return Stage("corpus", "raw data", READY, ws.relative(path), command, *_file_facts(path), details)


def _tokenizer(ws: Workspace) -> Stage:
    path, command = ws.tokenizer_path, "llmp tokenizer train"
    if not path.is_file():
        return Stage("tokenizer", "tokenizer", MISSING, ws.relative(path), command)
    from llm_playground.tokenizer import SentencePieceTokenizer

    try:
        details = f"vocab {SentencePieceTokenizer(path).vocab_size}"
    except PlaygroundError as exc:
        return Stage("tokenizer", "tokenizer", STALE, ws.relative(path), command, *_file_facts(path), exc.message)
    state = READY
    if ws.corpus_path.is_file() and ws.corpus_path.stat().st_mtime > path.stat().st_mtime:
        state, details = STALE, details + " (trained before the current corpus)"
    return Stage("tokenizer", "tokenizer", state, ws.relative(path), command, *_file_facts(path), details)


def _processed(ws: Workspace) -> Stage:
    rel, command = ws.relative(ws.processed_dir), "llmp data prepare"
    if not ws.meta_path.is_file():
        return Stage("processed", "processed data", MISSING, rel, command)
    try:
        meta = load_prepared(ws).meta  # checks the .bin sizes and that tokenizer and corpus are still the same
    except PlaygroundError as exc:
        facts = _file_facts(ws.meta_path) if ws.meta_path.is_file() else (None, None)
        return Stage("processed", "processed data", STALE, rel, command, *facts, details=exc.message)
    size = sum(p.stat().st_size for p in (ws.train_bin, ws.val_bin, ws.meta_path))
    details = f"{_count(meta['train_tokens'])} train + {_count(meta['val_tokens'])} val tokens, {meta['dtype']}"
    return Stage("processed", "processed data", READY, rel, command, size, _mtime(ws.meta_path), details)


def _checkpoint(ws: Workspace, runs: list[RunStatus]) -> Stage:
    rel, command = ws.relative(ws.runs_dir), "llmp train --preset tiny"
    ready = [run for run in runs if run.ready]
    if not ready:
        details = f"{len(runs)} run(s) without a checkpoint yet" if runs else ""
        return Stage("checkpoint", "checkpoint", MISSING, rel, command, details=details)
    newest = ready[0]
    details = f"{newest.path} ({newest.checkpoint})" + "".join(
        f", {key} {newest.last_metrics[key]:.4g}" if isinstance(newest.last_metrics[key], float)
        else f", {key} {newest.last_metrics[key]}" for key in ("step", "val_loss") if key in newest.last_metrics)
    if len(ready) > 1:
        details += f"; {len(ready)} runs ready"
    return Stage("checkpoint", "checkpoint", READY, newest.path, command, newest.size_bytes, newest.modified, details)


def _app(runs: list[RunStatus]) -> Stage:
    ready = [run for run in runs if run.ready]
    if not ready:
        return Stage("app", "app ready", MISSING, "", "llmp ui", details="needs a checkpoint")
    return Stage("app", "app ready", READY, ready[0].path, "llmp ui",
                 details=f"llmp generate --model {ready[0].path} --raw \"ROMEO:\"")


def run_statuses(ws: Workspace) -> list[RunStatus]:
    """Every run folder under runs/, newest first; a run is ready once it has a best or last checkpoint."""
    runs = []
    for run in ws.runs():
        complete = run.complete_checkpoints()
        newest = max(((path / CHECKPOINT_WEIGHTS).stat().st_mtime for _, path in complete),
                     default=run.path.stat().st_mtime)
        size = sum(p.stat().st_size for p in run.path.rglob("*") if p.is_file())
        runs.append((newest, RunStatus(run.name, ws.relative(run.path), complete[0][0] if complete else None,
                                       _iso(newest), size, _last_metrics(run.metrics))))
    return [run for _, run in sorted(runs, key=lambda item: item[0], reverse=True)]


def _last_metrics(path: Path) -> dict[str, Any]:
    """The last complete JSON line of a metrics file (training may be writing the next one)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        return record if isinstance(record, dict) else {}
    return {}


def _file_facts(path: Path) -> tuple[int | None, str | None]:
    return path.stat().st_size, _mtime(path)


def _mtime(path: Path) -> str:
    return _iso(path.stat().st_mtime)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _count(value: Any) -> str:
    if not isinstance(value, int):
        return "?"
    return f"{value / 1e6:.2f}M" if value >= 1_000_000 else f"{value / 1e3:.1f}k" if value >= 1000 else str(value)

