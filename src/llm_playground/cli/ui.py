"""`llmp ui`: start the web app (Streamlit) in this process and print its URL."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from llm_playground.errors import InputError, InvalidParameter

err = Console(stderr=True, highlight=False, soft_wrap=True)


def _check_port_free(host: str, port: int) -> None:
    """Streamlit would exit with a bare message on a taken port; say which option fixes it instead."""
    if not 1 <= port <= 65535:
        raise InvalidParameter(f"port {port} does not exist", "use --port between 1 and 65535 (default 8501)")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As the server will: a port whose last connections are in TIME_WAIT is free to listen on.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                             "pick another --port, stop what uses it, or use --host 127.0.0.1") from None


def ui_command(
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0 for every interface)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8501,
) -> None:
    """Start the web app in a browser: chat, explore, function calling, training, models."""
    from streamlit.web import cli as streamlit_cli

    import llm_playground.ui

    _check_port_free(host, port)
    app = Path(llm_playground.ui.__file__).parent / "app.py"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    err.print(f"[bold]LLM Playground[/] web app: [link]http://{shown}:{port}[/link]  (Ctrl+C stops it)")
    flags = {"server.address": host, "server.port": port, "server.headless": True,
             "server.fileWatcherType": "none", "server.runOnSave": False, "browser.gatherUsageStats": False,
             "client.toolbarMode": "minimal", "logger.level": "warning"}
    # Streamlit's own CLI entry (in this process: stopping `llmp ui` stops the server, no child left behind).
    streamlit_cli.main(["run", str(app), *[f"--{key}={value}" for key, value in flags.items()]],
                       standalone_mode=False)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui_command)
