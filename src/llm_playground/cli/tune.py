"""`llmp tune calls`: train the LoRA adapter that function calls decode with."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from llm_playground.cli.options import ThreadsOption
from llm_playground.cli.paths import check_output

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

tune_app = typer.Typer(help="Fine-tune a model for a task (LoRA adapters).", no_args_is_help=True)


@tune_app.command("calls")
def tune_calls_command(
    out_dir: Annotated[Path, typer.Option("--out", help="the adapter directory to write")],
    model: Annotated[str, typer.Option("--model", "-m", help="the base model (Llama family, native backend)")]
    = "smollm2",
    steps: Annotated[int, typer.Option(min=1, help="optimizer steps")] = 360,
    batch_size: Annotated[int, typer.Option(min=1, help="generated examples per step")] = 8,
    seed: Annotated[int, typer.Option(help="seed of the generated data and of the adapter's initialisation")] = 0,
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank")] = 8,
    learning_rate: Annotated[float, typer.Option("--lr", min=0.0, help="peak learning rate")] = 2e-3,
    dtype: Annotated[str, typer.Option(help="the frozen base weights' dtype while training")] = "float32",
    threads: ThreadsOption = None,
    heldout: Annotated[int, typer.Option(min=0, help="held-out examples whose loss is reported")] = 64,
    catalog_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of examples drawn from the "
                                                 "catalog's tuning-split function sets (docs/functions.md)")] = 0.0,
) -> None:
    """Train a LoRA adapter on generated request → call examples (many function families, regex idioms)."""
    from llm_playground.functions.tuning.train import TuneConfig, tune_calls

    check_output(out_dir, "--out", directory=True)

    config = TuneConfig(steps=steps, batch_size=batch_size, seed=seed, rank=rank, alpha=2.0 * rank,
                        learning_rate=learning_rate, dtype=dtype, threads=threads, heldout_examples=heldout,
                        catalog_share=catalog_share)
    result = tune_calls(out_dir, config, model, console=err)
    err.print(f"trained {result.steps} steps on {result.examples} generated examples in {result.seconds:.0f} s; "
              f"final loss {result.final_loss:.4f}; held-out answer loss {result.heldout_loss_base:.4f} → "
              f"{result.heldout_loss:.4f}")
    out.print(f"adapter: {result.out}\ntry: llmp call --adapter {result.out} \"Replace all digits in 'a1b22' with X\"")


def register(app: typer.Typer) -> None:
    app.add_typer(tune_app, name="tune")

