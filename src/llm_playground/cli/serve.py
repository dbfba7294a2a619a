"""`llmp serve` (the OpenAI-compatible API) and `llmp logs` (what it was asked and answered)."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from llm_playground.cli.options import ModelChoice
from llm_playground.errors import InvalidParameter
from llm_playground.workspace import Workspace

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def serve_command(
    host: Annotated[str, typer.Option(help="address to listen on; anything but loopback needs --api-key")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    models: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="a model to serve (repeatable): "  # noqa: UP045
                                                        "name, .gguf file or model directory")] = None,
    dtype: Annotated[str, typer.Option(help="weights' dtype: float32, float16, bfloat16, int8 or int4")] = "float32",
    backend: Annotated[str, typer.Option(help="auto, native, transformers or llamacpp")] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="torch threads (default: half the cores)")] = None,  # noqa: UP045
    api_key: Annotated[Optional[str], typer.Option(envvar="LLMP_API_KEY", show_envvar=True,  # noqa: UP045
                                                   help="require 'Authorization: Bearer KEY' on /v1")] = None,
    insecure: Annotated[bool, typer.Option(help="allow a non-loopback address without an API key")] = False,
    batch: Annotated[int, typer.Option(help="requests per model that decode together (continuous batching, "
                                            "native backend; seeded outputs may then differ in rare tokens); "
                                            "1 runs them one at a time")] = 1,
    queue_size: Annotated[int, typer.Option(help="requests that may wait for a model; more get 429")] = 64,
    max_body_bytes: Annotated[int, typer.Option(help="larger request bodies get 413")] = 1 << 20,
    log_requests: Annotated[bool, typer.Option("--log/--no-log", help="log every request to SQLite")] = True,
    max_choices: Annotated[int, typer.Option(help="prompts × n one request may ask for; more get 400")] = 128,
) -> None:
    """Serve models over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models)."""
    from llm_playground.serve import RequestLog, create_app
    from llm_playground.serve.server import check_bind, run

    check_bind(host, api_key, insecure)
    if not 0 <= port <= 65535:
        raise InvalidParameter(f"port must be between 0 and 65535, got {port}", "use e.g. --port 8000")
    if queue_size < 0 or max_body_bytes < 1 or not 1 <= batch <= 256 or max_choices < 1:
        raise InvalidParameter("--queue-size must be >= 0, --max-body-bytes >= 1, --max-choices >= 1 and "
                               "--batch 1 to 256", "use the defaults")
    loaded = {}
    for spec in dict.fromkeys(models or [ModelChoice.model]):
        model = ModelChoice(spec, dtype, backend, threads).load()
        loaded[model.info.name] = model  # clients name a model as `llmp models` does: smollm2, a file's stem
    names = list(loaded)
    request_log = RequestLog(Workspace.current().logs_db) if log_requests else None
    app = create_app(loaded, api_key=api_key, max_waiting=queue_size, max_body_bytes=max_body_bytes,
                     request_log=request_log, max_batch=batch, max_choices=max_choices)
    shown = f"[{host}]" if ":" in host else host
    err.print(f"serving {', '.join(names)} on [bold]http://{shown}:{port}/v1[/] (OpenAI-compatible; "
              f"{'API key required' if api_key else 'no API key'}); "
              f"request log: {request_log.path if request_log else 'off'}. Ctrl-C stops.")
    run(app, host, port)


def logs_command(
    search: Annotated[Optional[str], typer.Option(help="only requests whose messages, output, "  # noqa: UP045
                                                  "model or parameters contain this text")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first (0: all)")] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="export the full records as JSON")] = False,
) -> None:
    """List the API server's logged requests (newest first), or export them as JSON."""
    from llm_playground.serve import RequestLog

    if limit < 0:
        raise InvalidParameter(f"--limit must be >= 0, got {limit}", "use --limit 0 for all")
    path = Workspace.current().logs_db
    records = RequestLog(path).query(search, limit or None)
    if json_output:
        out.out(json.dumps([dataclasses.asdict(r) for r in records], ensure_ascii=False, indent=2))
        return
    if not records:
        err.print(f"no logged requests in {path}" + (f" matching {search!r}" if search else ""))
        return
    table = Table(title=f"{len(records)} request(s) from {path}")
    for column in ("id", "time (UTC)", "model", "status", "tokens", "ms", "prompt", "output"):
        table.add_column(column, overflow="fold", justify="right" if column in ("id", "tokens", "ms") else "left")
    for r in records:
        table.add_row(str(r.id), r.time[:19].replace("T", " "), r.model, str(r.status),
                      f"{r.prompt_tokens}+{r.completion_tokens}", f"{r.total_ms or 0:.0f}",
                      _excerpt(_last_prompt(r.messages)), _excerpt(_output_text(r.output) or r.error or ""))
    out.print(table)


def _last_prompt(messages: Any) -> str:
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        content = messages[-1].get("content")
        return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return messages if isinstance(messages, str) else json.dumps(messages, ensure_ascii=False)


def _output_text(output: Any) -> str:
    if not isinstance(output, list):
        return ""
    texts = []
    for choice in output:
        message = choice.get("message") or {}
        calls = [f"{c['function']['name']}({c['function']['arguments']})" for c in message.get("tool_calls") or []]
        texts.append(choice.get("text") or message.get("content") or ", ".join(calls))
    return " | ".join(texts)


def _excerpt(text: str, size: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= size else text[: size - 1] + "…"


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.command("logs")(logs_command)
