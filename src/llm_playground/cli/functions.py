"""`llmp call` (requests → function calls) and `llmp eval calls` (accuracy against expected calls)."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from llm_playground.cli.options import DEFAULT_CHOICE, ModelChoice, with_model_options
from llm_playground.cli.paths import check_output
from llm_playground.errors import InputError
from llm_playground.functions import call_functions, load_functions
from llm_playground.functions.batch import entry_for, load_prompts, run_batch
from llm_playground.functions.builtin import load_implementations
from llm_playground.functions.calling import CallOutcome
from llm_playground.functions.evaluate import evaluate_calls
from llm_playground.functions.examples_data import EXAMPLE_FILES
from llm_playground.workspace import Workspace, atomic_write_text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _default(path: Path | None, name: str) -> Path:
    """The given path, or data/input/NAME — filled with the course's example on first use."""
    if path is not None:
        return path
    target = Workspace.current().input_dir / name
    if not target.exists() and name in EXAMPLE_FILES:
        target.parent.mkdir(parents=True, exist_ok=True)
        with resources.as_file(resources.files("llm_playground.functions") / "examples" / name) as source:
            shutil.copyfile(source, target)
        err.print(f"[dim]note: copied the course's example {name} to {target}[/]")
    return target


def _write_trace(path: Path, prompts: list[str], outcomes: list[CallOutcome | None]) -> None:
    lines = []
    for prompt, outcome in zip(prompts, outcomes, strict=True):
        if outcome is None:
            lines.append({"type": "call", "prompt": prompt, "error": True})
            continue
        lines.append({"type": "call", "prompt": prompt, "output": outcome.text, "stats": outcome.stats.to_dict(),
                      "choice_probs": {k: round(v, 4) for k, v in outcome.choice_probs.items()}})
        lines += [{"type": "step", **step} for step in outcome.steps]
    atomic_write_text(path, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))


@with_model_options
def call_command(
    prompt: Annotated[str | None, typer.Argument(help="one request; without it, every prompt of --input")] = None,
    choice: ModelChoice = DEFAULT_CHOICE,
    functions: Annotated[Path | None, typer.Option(help="function definitions (course, older course or "
                                                      "OpenAI tools format) [default: data/input/"
                                                      "functions_definition.json]")] = None,
    input_path: Annotated[Path | None, typer.Option("--input", help="JSON list of {\"prompt\": ...} [default: "
                                                                  "data/input/function_calling_tests.json]")] = None,
    output: Annotated[Path | None, typer.Option(help="results file [default: "
                                                   "data/output/function_calling_results.json]")] = None,
    trace: Annotated[Path | None, typer.Option(help="write every step of every call (JSON Lines)")] = None,
    execute: Annotated[bool, typer.Option(help="run each call (built-in or --impl functions), add its result")] = False,
    impl: Annotated[list[Path] | None, typer.Option(help="a Python module whose functions --execute may run")] = None,
    parallel: Annotated[bool, typer.Option(help="allow several calls in one answer")] = False,
    allow_none: Annotated[bool, typer.Option(help="allow 'no suitable function' (name null)")] = False,
    adapter: Annotated[str, typer.Option(help="LoRA adapter the arguments are decoded with: default (the bundled "
                                              "one, for the bundled SmolLM2 only), none, or a directory from "
                                              "`llmp tune calls`")] = "default",
) -> None:
    """Turn requests into function calls decoded under a grammar: always valid JSON, declared names, typed values."""
    check_output(output, "--output")
    check_output(trace, "--trace")
    specs = load_functions(_default(functions, "functions_definition.json"))
    implementations = load_implementations(impl) if execute else None
    prompts: list = []
    if prompt is None:  # read before the model loads: an empty or broken list costs no load
        source = _default(input_path, "function_calling_tests.json")
        prompts = load_prompts(source)
        if not prompts:
            raise InputError(f"{source} holds no prompts: nothing to do", 'add items like {"prompt": "..."}')
    model = choice.load()
    if prompt is not None:
        outcome = call_functions(model, [{"role": "user", "content": prompt}], specs, parallel=parallel,
                                 allow_none=allow_none, adapter=adapter)
        entry = entry_for(prompt, outcome, parallel, allow_none, implementations)
        out.print(json.dumps(entry, ensure_ascii=False))
        if output is not None:  # the same file shape as a batch: a list of entries
            atomic_write_text(output, json.dumps([entry], ensure_ascii=False, indent=2))
            err.print(f"[dim]wrote {output}[/]")
        err.print(f"[dim]{outcome.stats.tokens} tokens ({outcome.stats.forced_tokens} forced), "
                  f"{outcome.stats.total_ms:.0f} ms, valid: {outcome.stats.valid}[/]")
        if trace is not None:
            _write_trace(trace, [prompt], [outcome])
        raise typer.Exit(0 if outcome.stats.valid else 1)
    output = output or Workspace.current().output_dir / "function_calling_results.json"
    columns = (TextColumn("calls"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("calls", total=len(prompts))
        report = run_batch(model, specs, prompts, output=output, parallel=parallel, allow_none=allow_none,
                           implementations=implementations, on_done=lambda *_: progress.advance(task),
                           adapter=adapter)
    if trace is not None:
        _write_trace(trace, prompts, report.outcomes)
    summary = report.summary()
    failed = [e for e in report.entries if "error" in e]
    for entry in failed:
        err.print(f"[yellow]failed:[/] {escape(repr(entry['prompt'][:60]))}: {escape(entry['error'])}")
    out.print(f"{len(prompts)} calls → {output}: {summary['valid_pct']}% valid, {summary['seconds']} s "
              f"({summary['mean_ms_per_call']} ms a call), {summary['forward_ms_per_token']} ms forward and "
              f"{summary['mask_ms_per_step']} ms mask per token")


@with_model_options
def eval_calls_command(
    results: Annotated[Path | None, typer.Option(help="results of `llmp call` [default: "
                                                    "data/output/function_calling_results.json]")] = None,
    expected: Annotated[Path | None, typer.Option(help="expected calls for the same prompts [default: "
                                                     "data/input/function_calling_expected.json]")] = None,
    functions: Annotated[Path | None, typer.Option(help="definitions, to compare arguments by declared type")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    questions: Annotated[Path | None, typer.Option(help="BFCL questions file (JSON Lines): run the model on it and "
                                                      "match with BFCL's rules", rich_help_panel="BFCL")] = None,
    answers: Annotated[Path | None, typer.Option(help="BFCL possible answers for --questions (items without one "
                                                    "expect no call)", rich_help_panel="BFCL")] = None,
    strict: Annotated[bool, typer.Option(help="compare strings exactly (BFCL ignores case, spaces and "
                                              ",./-_*^)", rich_help_panel="BFCL")] = False,
    tool_choice: Annotated[str | None, typer.Option(help="auto for every item [default: auto for items without an "
                                                       "answer, required for the others]",
                                                  rich_help_panel="BFCL")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N questions", rich_help_panel="BFCL")] = None,
    adapter: Annotated[str, typer.Option(help="LoRA adapter: default, none or a directory",
                                         rich_help_panel="BFCL")] = "default",
    choice: ModelChoice = DEFAULT_CHOICE,
) -> None:
    """Accuracy of function calls: the name, and each argument compared by its declared type; with
    --questions (and --answers), run the model on a BFCL-format file pair and match with BFCL's rules."""
    if questions is not None:
        _eval_bfcl(questions, answers, strict, tool_choice, limit, adapter, choice, json_output)
        return
    if answers is not None:
        raise InputError("--answers needs --questions", "pass the BFCL questions file with --questions")
    specs = load_functions(functions) if functions is not None else None
    results = results or Workspace.current().output_dir / "function_calling_results.json"
    report = evaluate_calls(results, _default(expected, "function_calling_expected.json"), specs)
    if json_output:
        out.print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return
    table = Table("function", "exact", "total", title="Function calls")
    for name, (exact, total) in sorted(report.per_function.items()):
        table.add_row(name, str(exact), str(total))
    out.print(table)
    for failure in report.failures:
        out.print(f"[red]✗[/] {escape(repr(failure['prompt']))}: {escape('; '.join(failure['problems']))}")
    out.print(f"exact: {report.exact}/{report.total} ({100 * report.accuracy:.1f}%), "
              f"right function: {report.name_correct}/{report.total}")


def _eval_bfcl(questions: Path, answers: Path | None, strict: bool, tool_choice: str | None, limit: int | None,
               adapter: str, choice: ModelChoice, json_output: bool) -> None:
    from llm_playground.functions.bfcl import evaluate_bfcl, read_bfcl

    if tool_choice not in (None, "auto", "required"):
        raise InputError(f"unknown --tool-choice {tool_choice!r}", "use auto or required")
    items = read_bfcl(questions, answers)[:limit]
    if not items:
        raise InputError(f"{questions} holds no questions", "give a BFCL questions file with at least one item")
    model = choice.load()
    columns = (TextColumn("calls"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task("calls", total=len(items))
        report = evaluate_bfcl(model, items, strict=strict, tool_choice=tool_choice, adapter=adapter,
                               on_done=lambda *_: progress.advance(task))
    summary = report.to_dict()
    if json_output:
        out.print(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    for failure in report.failures:
        out.print(f"[red]✗[/] {escape(failure['id'])} {escape(repr(failure['request'][:70]))}: "
                  f"{escape('; '.join(failure['problems']))}")
    kinds = ", ".join(f"{k} {v['correct']}/{v['total']}" for k, v in summary["per_kind"].items())
    out.print(f"{summary['total']} questions: {kinds}; {summary['valid_pct']}% valid; "
              f"{summary['seconds_per_call']} s a call ({summary['cpu_seconds_per_call']} s CPU)"
              f"{'' if strict else ' (BFCL string matching; --strict compares exactly)'}")


def register(app: typer.Typer) -> None:
    from llm_playground.cli.evaluate import eval_app

    app.command("call")(call_command)
    eval_app.command("calls")(eval_calls_command)
