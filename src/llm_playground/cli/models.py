"""`llmp models` and `llmp tokenize`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from llm_playground.cli.options import DEFAULT_CHOICE, ModelChoice, with_model_options
from llm_playground.model import list_models

out = Console(highlight=False)


def models_command(
    load: Annotated[bool, typer.Option(help="load each model to report its details (converts on first use)")]
    = True,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """What models are available, with parameters, context length, vocab size, dtype and location."""
    rows = []
    for entry in list_models():
        row: dict[str, Any] = {"name": entry.name, "description": entry.description, "location": entry.location,
               "converted": entry.converted}
        if load and not entry.location.startswith("missing"):
            info = ModelChoice(entry.name).load().info
            row |= {"parameters": info.parameters, "context_length": info.context_length,
                    "vocab_size": info.vocab_size, "dtype": info.dtype, "backend": info.backend,
                    "converted": info.location}
        rows.append(row)
    if json_output:
        out.out(json.dumps(rows, indent=2))
        return
    table = Table(title="Models")
    for column in ("name", "parameters", "context", "vocab", "dtype", "backend", "location"):
        table.add_column(column, overflow="fold")
    for row in rows:
        params = f"{row['parameters'] / 1e6:.1f}M" if "parameters" in row else "?"
        table.add_row(row["name"], params, str(row.get("context_length", "?")), str(row.get("vocab_size", "?")),
                      row.get("dtype", "?"), row.get("backend", "?"),
                      f"{row['location']}\n[dim]cache: {row.get('converted') or 'not converted yet'}[/]")
    out.print(table)
    out.print("[dim]Also accepted by --model: any .gguf file or Hugging Face model directory.[/]")


@with_model_options
def tokenize_command(
    text: Annotated[str, typer.Argument(help="text to tokenize")],
    choice: ModelChoice = DEFAULT_CHOICE,
    tokenizer_path: Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--tokenizer", help="a tokenizer file instead of the model's: a SentencePiece .model (llmp tokenizer "
                            "train) or a directory with tokenizer.json; no model is loaded")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show how a model's tokenizer splits TEXT: tokens, ids and counts (no weights are loaded)."""
    from llm_playground.explore.tokens import analyze, load_tokenizer

    tokenizer = load_tokenizer(tokenizer_path or choice.model)
    analysis = analyze(tokenizer, text)
    ids = analysis.table["id"].tolist()
    pieces = [{"id": i, "token": token, "text": tokenizer.decode([i])}
              for i, token in zip(ids, analysis.table["token"], strict=True)]
    summary = dataclasses.asdict(analysis.summary)
    if json_output:
        out.out(json.dumps({"ids": ids, "pieces": pieces, **summary}, ensure_ascii=False, indent=2))
        return
    table = Table(title=f"{len(ids)} tokens")
    for column in ("#", "id", "token", "text"):
        table.add_column(column)
    for position, piece in enumerate(pieces):
        table.add_row(str(position), str(piece["id"]), str(piece["token"]), repr(piece["text"]))
    out.print(table)
    out.print(f"ids: {ids}")
    out.print(f"{summary['tokens']} tokens, {summary['words']} words, {summary['characters']} characters: "
              f"{summary['tokens_per_word']} tokens per word, {summary['characters_per_token']} characters "
              "per token")


def register(app: typer.Typer) -> None:
    app.command("models")(models_command)
    app.command("tokenize")(tokenize_command)
