"""`llmp eval`: measure a model. `perplexity` is a thin front end to `explore/perplexity.py`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from llm_playground.cli.options import DEFAULT_CHOICE, ModelChoice, with_model_options
from llm_playground.errors import InputError

out = Console(highlight=False, soft_wrap=True)
eval_app = typer.Typer(help="Measure models and outputs: perplexity, function-call accuracy.", no_args_is_help=True)


def _read(text: str | None, file: Path | None) -> str:
    if (text is None) == (file is None):
        raise InputError("give exactly one of --text or --file", 'e.g. llmp eval perplexity --text "To be"')
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {file}: {exc}", "give a UTF-8 text file") from None
    assert text is not None
    if not text.strip():
        raise InputError("the text is empty", "give some text to score")
    return text


@with_model_options
def perplexity_command(
    text: Annotated[Optional[str], typer.Option(help="the text to score")] = None,  # noqa: UP045
    file: Annotated[Optional[Path], typer.Option(help="a UTF-8 file to score")] = None,  # noqa: UP045
    window: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="tokens per window for texts longer than it [default: min(context, 512)]")] = None,
    stride: Annotated[Optional[int], typer.Option(help="how far the window moves [default: window/2]")] = None,  # noqa: UP045
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
    choice: ModelChoice = DEFAULT_CHOICE,
) -> None:
    """Perplexity of a text under a model (ours or pretrained), windowed past the context."""
    from llm_playground.explore.common import encode
    from llm_playground.explore.perplexity import perplexity

    content = _read(text, file)
    model = choice.load()
    result = perplexity(model, encode(model.tokenizer, content), window, stride)
    figures = {"model": model.info.name, "tokens": result.tokens, "perplexity": round(result.perplexity, 4),
               "mean_nll": round(result.mean_nll, 5), "bits_per_token": round(result.bits_per_token, 4),
               "window": result.window, "stride": result.stride, "windows": result.windows}
    if as_json:
        out.print(json.dumps(figures, indent=1))
        return
    out.print(f"perplexity {result.perplexity:.2f} (mean NLL {result.mean_nll:.4f} nats, {result.bits_per_token:.3f} "
              f"bits/token) over {result.tokens} tokens; {result.windows} window(s) of {result.window}, "
              f"stride {result.stride}; model {model.info.name}")


def register(app: typer.Typer) -> None:
    """`llmp eval`: the one group; other modules add their commands to `eval_app` (e.g. `eval calls`)."""
    eval_app.command("perplexity")(perplexity_command)
    app.add_typer(eval_app, name="eval")
