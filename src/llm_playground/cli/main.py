"""`llmp`: the entry point, global options and the one place errors become exit statuses."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from llm_playground.errors import PlaygroundError

app = typer.Typer(help="LLM Playground: build, run, inspect and use small language models.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
err_console = Console(stderr=True, soft_wrap=True)
_state = {"debug": False}


@app.callback()
def _global(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks of unexpected errors")] = False,
            verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log more")] = False) -> None:
    _state["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_path=False, show_time=False)])


def _register() -> None:
    if app.registered_commands or app.registered_groups:  # once per process (docs' reference calls it too)
        return
    from llm_playground.cli import build, evaluate, explore, functions, generate, models, serve, status, train, tune, ui

    build.register(app)
    explore.register(app)
    functions.register(app)
    evaluate.register(app)
    generate.register(app)
    models.register(app)
    serve.register(app)
    status.register(app)
    train.register(app)
    tune.register(app)
    ui.register(app)
    from llm_playground.cli import agent  # noqa: I001 - its own line, so parallel additions merge

    agent.register(app)

    from llm_playground.cli import knowledge

    knowledge.register(app)


def main() -> None:
    _register()
    try:
        app()  # standalone: click handles --help, usage errors (status 2) and typer.Exit itself
    except PlaygroundError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}" + (f" — {exc.fix}" if exc.fix else ""),
                          highlight=False)
        sys.exit(exc.exit_code)
    except Exception as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]unexpected error:[/] {type(exc).__name__}: {exc} "
                          "(run with --debug for the traceback, and please report it)", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
