"""`llmp train`, `llmp pipeline` and `llmp export`: build our GPT and hand it to other tools."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from llm_playground.cli.paths import check_output
from llm_playground.errors import InputError, InvalidParameter
from llm_playground.workspace import RunDir, Workspace

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

PresetOption = Annotated[Optional[str], typer.Option(  # noqa: UP045 (typer needs Optional)
    help="tiny (2 CPU cores, minutes), small (a GPU, nanoGPT's shakespeare-char) or gpt2-124m [default: tiny]")]
SetOption = Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
    "--set", help="override one setting, key=value; repeatable (e.g. --set max_iters=500)")]
OutOption = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    "--out", help="the run directory [default: runs/PRESET]")]


def _run_dir(workspace: Workspace, given: Path | None, preset: str | None) -> Path:
    if given is None:
        return workspace.run_dir(preset or "tiny")
    path = given if given.is_absolute() else workspace.root / given
    check_output(path, "--out", directory=True)
    return path


def _train(workspace: Workspace, run_dir: Path, preset: str | None, config_file: Path | None,
           overrides: list[str], resume: bool, pipeline: bool = False) -> None:
    """`pipeline`: announce the stage, and stop when the run is already complete (llmp pipeline)."""
    from llm_playground.train.config import build_config, load_saved
    from llm_playground.train.trainer import Trainer

    if resume:
        if preset is not None or config_file is not None:
            raise InvalidParameter("--resume continues a run with its own config", "drop --preset/--config; "
                                   "--set can still change training settings (e.g. --set max_iters=5000)")
        saved = RunDir(run_dir).config
        if not saved.is_file():
            raise InputError(f"{run_dir} is not a run (no {saved.name})", f"start it: llmp train --out {run_dir}")
        config = build_config(overrides=overrides, base=load_saved(saved).model_dump())
        if pipeline:
            from llm_playground.model.gpt_model import read_config

            step = read_config(RunDir(run_dir).last)[1].get("step", 0)
            if step >= config.max_iters:  # a larger --set max_iters continues the run
                err.print(f"train: {workspace.relative(run_dir)} is complete (step {step})")
                return
    else:
        config = build_config(preset or ("tiny" if config_file is None else None), config_file, overrides)
    if pipeline:
        err.print(f"[bold]train[/]: {'resuming' if resume else 'starting'} {workspace.relative(run_dir)}", markup=True)
    result = Trainer(config, workspace, run_dir, resume=resume, console=err).run()
    if not result.is_main:
        return
    if result.samples:
        out.print(f"[bold]sample at step {result.step}:[/]\n{result.samples[-1].strip()}", markup=True)
    where, run = workspace.relative(run_dir), RunDir(run_dir)
    if result.interrupted:
        err.print(f"interrupted at step {result.step}; {workspace.relative(run.last)} saved. "
                  f"Continue with: llmp train --resume --out {where}")
        raise typer.Exit(130)
    losses = f"val loss {result.val_loss:.4f} (best {result.best_val_loss:.4f})" if result.val_loss else ""
    err.print(f"trained to step {result.step} in {result.elapsed_s:.0f} s, {result.tokens_per_s:,.0f} tokens/s; "
              f"{losses}\ncheckpoints: {workspace.relative(run.checkpoints_dir)}/{{best,last}}; "
              f"metrics: {workspace.relative(run.metrics)}\n"
              f'try: llmp generate --model {where} --raw "ROMEO:"')


def train_command(
    preset: PresetOption = None,
    config: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--config", help="a YAML file of settings (over the preset)")] = None,
    overrides: SetOption = None,
    output: OutOption = None,
    resume: Annotated[bool, typer.Option(help="continue the run in --out from its last checkpoint")] = False,
) -> None:
    """Train our GPT on the prepared data (data/processed). Ctrl-C saves a checkpoint before it exits."""
    workspace = Workspace.current()
    _train(workspace, _run_dir(workspace, output, preset), preset, config, overrides or [], resume)


def pipeline_command(
    preset: PresetOption = None,
    overrides: SetOption = None,
    output: OutOption = None,
) -> None:
    """Run every missing stage with defaults: collect Shakespeare → tokenizer → prepare → train."""
    from llm_playground.train.pipeline import missing_data_stages, run_data_stage

    workspace = Workspace.current()
    for stage in missing_data_stages(workspace):
        err.print(f"[bold]{stage}[/]: running", markup=True)
        err.print(f"  {run_data_stage(workspace, stage)}")
    run_dir = _run_dir(workspace, output, preset)
    resume = RunDir(run_dir).last.is_dir()
    _train(workspace, run_dir, None if resume else preset, None, overrides or [], resume, pipeline=True)


def export_command(
    run: Annotated[Path, typer.Argument(help="a run directory (runs/NAME) or a checkpoint directory")],
    output: Annotated[Path, typer.Option("--out", help="the directory to write")],
    format: Annotated[str, typer.Option("--format", help="hf: a GPT-2 transformers directory")] = "hf",
) -> None:
    """Export our GPT for other tools: `hf` writes what AutoModelForCausalLM.from_pretrained loads."""
    from llm_playground.model.gpt_hf import export_hf
    from llm_playground.model.gpt_model import is_gpt_directory, is_run_directory

    if format != "hf":
        raise InvalidParameter(f"unknown export format {format!r}", "use --format hf")
    check_output(output, "--out", directory=True)
    if not run.is_dir() or not (is_run_directory(run) or is_gpt_directory(run)):
        raise InputError(f"{run} is not a run or a GPT checkpoint directory", "give runs/NAME (see llmp status)")
    result = export_hf(run, output)
    err.print(f"wrote {output}: {', '.join(result.files)}", markup=False)
    if result.tokenizer_json_skipped:
        err.print(f"tokenizer.json not written: {result.tokenizer_json_skipped}", markup=False)
    else:
        source = f"the start of {Workspace.current().relative(result.corpus)} and " if result.corpus else ""
        err.print(f"tokenizer.json: AutoTokenizer gives our SentencePiece ids on all {result.checked_texts:,} texts "
                  f"checked ({source}edge cases)", markup=False)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("pipeline")(pipeline_command)
    app.command("export")(export_command)
