"""The CLI reference (docs/cli-reference.md) from `--help` itself, so the page cannot drift from the code.

docs/cli-reference.md calls `markdown()` from a cog block; `make docs` rewrites the page and `make lint`
(and tests/test_docs.py) fail when it is stale. The help is rendered at a fixed width without colours,
whatever the terminal or CI sets (FORCE_COLOR, GITHUB_ACTIONS, COLUMNS), so the page is the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

WIDTH = 100


def _commands(command: Any, path: list[str]) -> Iterator[list[str]]:
    """Every command path under `command`, in the order `llmp --help` lists them."""
    yield path
    if hasattr(command, "list_commands"):  # a group
        import typer

        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            yield from _commands(command.get_command(ctx, name), [*path, name])


def markdown() -> str:
    """One section per command: a heading `llmp …` and its `--help` as a text block."""
    import typer.main
    from typer import rich_utils
    from typer.testing import CliRunner

    from llm_playground.cli import main

    saved = rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL, rich_utils.COLOR_SYSTEM
    rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL, rich_utils.COLOR_SYSTEM = WIDTH, False, None
    try:
        main._register()
        runner = CliRunner()
        sections = []
        for path in _commands(typer.main.get_command(main.app), []):
            result = runner.invoke(main.app, [*path, "--help"], prog_name="llmp", env={"COLUMNS": str(WIDTH)})
            if result.exit_code != 0:
                raise RuntimeError(f"llmp {' '.join(path)} --help failed: {result.output}")
            text = "\n".join(line.rstrip() for line in result.output.strip("\n").splitlines())
            sections.append(f"## {' '.join(['llmp', *path])}\n\n```text\n{text}\n```\n")
    finally:  # the test suite calls this in-process: leave typer as it was
        rich_utils.MAX_WIDTH, rich_utils.FORCE_TERMINAL, rich_utils.COLOR_SYSTEM = saved
    return "\n".join(sections)
