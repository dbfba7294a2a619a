"""`llmp status`: where the build flow stands, and the command that makes the next stage."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from llm_playground.workspace import Workspace

out = Console(highlight=False, soft_wrap=True)
_STATE_STYLE = {"ready": "[green]ready[/]", "missing": "[red]missing[/]", "stale": "[yellow]stale[/]"}


def status_command(json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Raw data? Tokenizer? Processed data? Checkpoint? App ready? With sizes, dates and the next command."""
    from llm_playground.data import pipeline_status

    status = pipeline_status(Workspace.current())
    if json_output:
        out.out(json.dumps(status.as_dict(), indent=2))
        return
    following = status.next_stage
    table = Table(title=f"Build status of {status.root}")
    for column in ("stage", "state", "path", "size", "modified", "details"):
        table.add_column(column, overflow="fold")
    for stage in status.stages:
        details = stage.details
        if stage is following:
            details = f"{details}\n[bold]next: {stage.command}[/]".strip()
        table.add_row(stage.title, _STATE_STYLE[stage.state], stage.path, _size(stage.size_bytes),
                      _date(stage.modified), details)
    out.print(table)
    if status.runs:
        runs = Table(title="Runs (newest first)")
        for column in ("run", "checkpoint", "size", "modified", "last metrics"):
            runs.add_column(column, overflow="fold")
        for run in status.runs:
            metrics = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in run.last_metrics.items() if k in ("step", "train_loss", "val_loss"))
            runs.add_row(run.path, run.checkpoint or "[red]none yet[/]", _size(run.size_bytes),
                         _date(run.modified), metrics)
        out.print(runs)
    out.print(f"next: {following.command}" if following else "every stage is ready: llmp ui")


def _date(iso: str | None) -> str:
    return f"{iso[:10]} {iso[11:16]} UTC" if iso else ""


def _size(size: int | None) -> str:
    if size is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return ""


def register(app: typer.Typer) -> None:
    app.command("status")(status_command)
