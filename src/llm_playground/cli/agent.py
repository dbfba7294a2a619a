"""`llmp agent` (a task → tool calls → an answer) and `llmp runs` (the recorded runs and their timelines)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llm_playground.agent import Agent, AgentRun, RunRecord, RunStore, StepRecord, select_tools
from llm_playground.agent.loop import DEFAULT_MAX_STEPS, check_options
from llm_playground.cli.options import DEFAULT_CHOICE, ModelChoice, with_model_options
from llm_playground.errors import InputError
from llm_playground.workspace import Workspace

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
runs_app = typer.Typer(help="Agent runs recorded in the workspace (agent.sqlite3).", invoke_without_command=True,
                       no_args_is_help=False)


def _tool_sources(values: list[str]) -> tuple[list[str], list[Path]]:
    names, modules = [], []
    for value in (v.strip() for item in values for v in item.split(",")):
        if value.endswith(".py"):
            modules.append(Path(value))
            if not Path(value).is_file():
                raise InputError(f"tool module {value} not found", "pass --tools FILE.py (a Python module)")
        elif value:
            names.append(value)
    return names, modules


def _kb_tools(enabled: bool) -> list:
    if not enabled:
        return []
    from llm_playground.agent.kb import kb_tool

    return [kb_tool(Workspace.current())]


def _step_line(step: StepRecord) -> str:
    if step.kind == "answer":
        return f"[bold]{step.step}. answer[/] ({step.ms:.0f} ms): {escape(step.result or '')}"
    arguments = escape(json.dumps(step.arguments, ensure_ascii=False))
    shown = f"[red]{escape(step.result or '')}[/]" if step.error else escape(step.result or "")
    return f"[bold]{step.step}. {escape(step.tool or '')}[/]({arguments}) → {shown} [dim]({step.ms:.0f} ms)[/]"


@with_model_options
def agent_command(
    task: Annotated[str, typer.Argument(help="what the agent should do")],
    choice: ModelChoice = DEFAULT_CHOICE,
    tools: Annotated[list[str] | None, typer.Option("--tools", help="builtin (default), tool names, or a Python "
                                                                  "module.py whose functions become tools; "
                                                                  "repeatable")] = None,
    kb: Annotated[bool, typer.Option("--kb", help="add kb_search over the workspace's knowledge base")] = False,
    max_steps: Annotated[int, typer.Option(help="the most model steps (calls + the answer)")] = DEFAULT_MAX_STEPS,
    answer: Annotated[str, typer.Option(help="final answer: model (written by the model) or template (one call "
                                             "with a scalar result is answered from a template)")] = "model",
    json_output: Annotated[bool, typer.Option("--json", help="print the run as JSON")] = False,
) -> None:
    """Run a tool-using agent: each step calls one tool (grammar-decoded) or answers; every step is recorded."""
    check_options(max_steps, answer)  # before the model loads: bad input fails at once
    names, modules = _tool_sources(tools or ["builtin"])
    selected = select_tools(names, modules, extra=_kb_tools(kb))
    store = RunStore(Workspace.current().agent_db)
    agent = Agent(choice.load(), selected, max_steps=max_steps, answer=answer, store=store, model_name=choice.model)
    run = AgentRun(task)
    for step in agent.iter_run(task, run):
        if not json_output:
            err.print(_step_line(step))
    if json_output:
        out.print(json.dumps(_run_json(run), ensure_ascii=False))
    else:
        out.print(run.answer if run.answer is not None else f"(no answer: {_status_text(run.status, max_steps)})")
        err.print(f"[dim]run {run.run_id}: {run.status}, {len(run.steps)} steps, {run.ms / 1000:.1f} s — "
                  f"llmp runs show {run.run_id}[/]")
    raise typer.Exit(0 if run.status in ("answered", "repeated_call") else 1)


def _status_text(status: str, max_steps: int) -> str:
    return {"max_steps": f"stopped at the step limit ({max_steps}) before an answer; raise --max-steps",
            "repeated_call": "the model repeated a call; answered from the results so far",
            "answered": "answered"}.get(status, status)


def _run_json(run: AgentRun) -> dict:
    return {"run_id": run.run_id, "task": run.task, "status": run.status, "answer": run.answer,
            "answer_mode": run.answer_mode, "ms": round(run.ms, 1),
            "steps": [{k: v for k, v in asdict(s).items() if k != "value"} for s in run.steps]}


def _store() -> RunStore:
    path = Workspace.current().agent_db
    if not path.exists():
        raise InputError(f"no agent runs yet ({path} does not exist)", "run `llmp agent \"TASK\"` first")
    return RunStore(path)


@runs_app.callback()
def runs_command(ctx: typer.Context,
                 limit: Annotated[int, typer.Option(help="how many of the latest runs")] = 20) -> None:
    """List the latest agent runs (`llmp runs show ID` prints one's timeline)."""
    if ctx.invoked_subcommand is not None:
        return
    records = _store().runs(limit)
    table = Table("id", "started", "status", "steps", "tokens", "seconds", "task", "answer", title="Agent runs")
    for r in records:
        table.add_row(str(r.id), r.started[:19].replace("T", " "), r.status, str(r.steps),
                      str(r.prompt_tokens + r.completion_tokens), f"{(r.ms or 0) / 1000:.1f}",
                      escape(r.task[:50]), escape((r.answer or "")[:40]))
    out.print(table)


@runs_app.command("show")
def show_command(run_id: Annotated[int, typer.Argument(help="the run's id (from `llmp runs`)")],
                 json_output: Annotated[bool, typer.Option("--json", help="print the run as JSON")] = False) -> None:
    """The timeline of one run: every step, its tool, arguments, result, tokens and time."""
    record = _store().get(run_id)
    if record is None:
        raise InputError(f"no agent run {run_id}", "see `llmp runs` for the ids")
    if json_output:
        out.print(json.dumps(asdict(record), ensure_ascii=False, default=str))
        return
    print_timeline(record)


def print_timeline(record: RunRecord) -> None:
    out.print(f"[bold]run {record.id}[/] · {record.started[:19].replace('T', ' ')} · {escape(record.model)} · "
              f"{record.status} · {(record.ms or 0) / 1000:.1f} s")
    out.print(f"task: {escape(record.task)}")
    table = Table("step", "kind", "tool", "arguments", "result", "tokens", "ms")
    for s in record.timeline:
        result = f"[red]{escape(s.result or '')}[/]" if s.error else escape(s.result or "")
        table.add_row(str(s.step), s.kind, escape(s.tool or ""),
                      escape(json.dumps(s.arguments, ensure_ascii=False)) if s.arguments is not None else "",
                      result, f"{s.prompt_tokens}+{s.completion_tokens}", f"{s.ms:.0f}")
    out.print(table)
    mode = f" ({record.answer_mode})" if record.answer_mode else ""
    out.print(f"answer{mode}: {escape(record.answer or '(none)')}")
    if record.error:
        out.print(f"[red]error:[/] {escape(record.error)}")


def register(app: typer.Typer) -> None:
    app.command("agent")(agent_command)
    app.add_typer(runs_app, name="runs")
