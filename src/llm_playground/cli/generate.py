"""`llmp generate`, `llmp chat` and `llmp replay`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from llm_playground.cli.options import (
    DEFAULT_CHOICE,
    ModelChoice,
    ThreadsOption,
    with_model_options,
    with_sampling_options,
)
from llm_playground.errors import InputError, InvalidParameter, PlaygroundError
from llm_playground.generate import Generation, GenerationResult, SamplingParams
from llm_playground.generate.chat import ChatModel, ChatReply, LocalChatModel, with_system
from llm_playground.generate.prompt import build_prompt
from llm_playground.generate.trace import replay as replay_trace
from llm_playground.generate.trace import traced
from llm_playground.model import LanguageModel
from llm_playground.workspace import atomic_write_text

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _read_prompt(prompt: str) -> str:
    if prompt != "-":
        return prompt
    try:
        return sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the prompt from standard input: {exc}", "pipe UTF-8 text into it") from exc


def _stats(result: GenerationResult) -> str:
    return (f"[{result.completion_tokens} tokens, {result.finish_reason}, prefill {result.prefill_ms:.0f} ms, "
            f"{result.decode_tokens_per_s:.1f} tokens/s, seed {result.seed}]")


@with_sampling_options
@with_model_options
def generate_command(
    prompt: Annotated[str, typer.Argument(help="the prompt, or - to read standard input")],
    sampling: SamplingParams,
    choice: ModelChoice = DEFAULT_CHOICE,
    system: Annotated[Optional[str], typer.Option(help="system prompt (chat template)")] = None,  # noqa: UP045
    raw: Annotated[bool, typer.Option(help="feed the prompt as is, bypassing the chat template")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="print the result object instead")] = False,
    trace: Annotated[Optional[Path], typer.Option(help="write a per-token trace (JSON Lines)")] = None,  # noqa: UP045
) -> None:
    """Generate text from a prompt, streamed token by token."""
    text = _read_prompt(prompt)
    lm = choice.load()
    prompt_text = build_prompt(lm.tokenizer, text, system=system, raw=raw)
    generation = Generation(lm, lm.tokenizer.encode(prompt_text), sampling)
    current = -1
    for event in traced(generation, trace, prompt_text, choice.model):
        if json_output:
            continue
        if sampling.n > 1 and event.index != current:
            current = event.index
            out.print(f"\n[bold]--- sequence {current + 1} ---[/]" if current else
                      "[bold]--- sequence 1 ---[/]")
        out.out(event.text, end="")
        if event.step == 0 or event.text:
            out.file.flush()
    if json_output:
        payload = {"model": lm.info.name, "prompt": prompt_text, "params": sampling.model_dump(mode="json"),
                   "results": [r.to_dict() for r in generation.results]}
        out.out(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    out.out("")
    for result in generation.results:
        err.print(f"[dim]{_stats(result)}[/]")


@with_sampling_options
@with_model_options
def chat_command(
    sampling: SamplingParams,
    choice: ModelChoice = DEFAULT_CHOICE,
    system: Annotated[Optional[str], typer.Option(help="system prompt")] = None,  # noqa: UP045
    provider: Annotated[Optional[str], typer.Option(help="chat with --model at this OpenAI-compatible URL "  # noqa: UP045
                                                    "instead (OpenAI, Ollama, vLLM, llama.cpp, llmp serve)",
                                                    rich_help_panel="Provider")] = None,
    api_key_env: Annotated[str, typer.Option(help="the environment variable holding the provider's API key",
                                             rich_help_panel="Provider")] = "OPENAI_API_KEY",
) -> None:
    """Chat in the terminal: /reset, /params key=value, /save FILE, /quit."""
    if provider:
        from llm_playground.serve.client import ProviderClient, RemoteChatModel

        model: ChatModel = RemoteChatModel(ProviderClient(provider, os.environ.get(api_key_env) or None),
                                           choice.model)
        banner = f"[bold]{model.label}[/]"
    else:
        model = LocalChatModel(choice.load())
        info = model.model.info
        banner = (f"[bold]{info.name}[/] ({info.parameters / 1e6:.0f}M parameters, {info.backend}, "
                  f"{info.dtype})")
    session = ChatSession(model, sampling, system)
    err.print(f"{banner}. Type /quit to leave, /help for commands.")
    while True:
        try:
            line = input("you> ")
        except EOFError:
            out.out("")
            return
        if not line.strip():
            continue
        if line.startswith("/"):
            try:
                if session.command(line) == "quit":
                    return
            except PlaygroundError as exc:
                err.print(f"[red]{exc}[/]")
            continue
        out.out("assistant> ", end="")
        try:
            for delta in session.send(line):
                out.out(delta, end="")
                out.file.flush()
        except PlaygroundError as exc:
            err.print(f"\n[red]{exc}[/]")
            continue
        out.out("")
        err.print(f"[dim]{session.stats()}[/]")


class ChatSession:
    """A conversation kept as messages, answered by any `ChatModel`: a local model (the history fitted to its
    context window) or a model behind an OpenAI-compatible provider (which keeps its own limits)."""

    def __init__(self, model: ChatModel, params: SamplingParams, system: str | None) -> None:
        self.model, self.params, self.system = model, params.updated(n=1), system
        self.messages: list[dict[str, str]] = []
        self.last_reply: ChatReply | None = None

    @property
    def model_name(self) -> str:
        return self.model.label

    def stats(self) -> str:
        """The statistics line of the last answer."""
        reply = self.last_reply
        if reply is None:
            return ""
        if reply.result is not None:
            return _stats(reply.result)
        return (f"[{reply.completion_tokens} tokens, {reply.finish_reason}, first token {reply.ttft_ms or 0:.0f} ms, "
                f"{reply.total_ms:.0f} ms in all, {self.model_name}]")

    def reset(self) -> None:
        self.messages = []

    def send(self, text: str):  # noqa: ANN201 (a generator of text deltas)
        pending = [*self.messages, {"role": "user", "content": text}]
        stream = self.model.stream(with_system(pending, self.system), self.params)
        yield from stream
        self.last_reply = stream.reply
        self.messages = [*pending, {"role": "assistant", "content": stream.reply.text.strip()}]

    def command(self, line: str) -> str | None:
        name, _, rest = line.strip().partition(" ")
        if name == "/quit":
            return "quit"
        if name == "/reset":
            self.reset()
            err.print("[dim]history cleared[/]")
        elif name == "/params":
            if rest.strip():
                changes = dict(_parse_assignment(item) for item in rest.split())
                self.params = self.params.updated(**changes)
            err.print(f"[dim]{self.params.model_dump(exclude_defaults=True) or 'defaults'}[/]")
        elif name == "/save":
            if not rest.strip():
                raise InputError("/save needs a file name", "type /save chat.json")
            path = Path(rest.strip())
            record = {"model": self.model_name, "system": self.system,
                      "params": self.params.model_dump(mode="json"), "messages": self.messages}
            atomic_write_text(path, json.dumps(record, ensure_ascii=False, indent=2))
            err.print(f"[dim]saved {len(self.messages)} messages to {path}[/]")
        else:
            err.print("commands: /reset, /params key=value ..., /save FILE, /quit")
        return None


def _parse_assignment(item: str) -> tuple[str, object]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise InvalidParameter(f"cannot read {item!r}", "write /params key=value, e.g. /params temperature=0.5")
    if key == "stop":
        return key, [value]
    lowered = value.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered in ("none", "null"):
        return key, None
    for kind in (int, float):
        try:
            return key, kind(value)
        except ValueError:
            pass
    return key, value


def replay_command(
    trace: Annotated[Path, typer.Argument(help="a trace written by --trace")],
    threads: ThreadsOption = None,
) -> None:
    """Re-run a traced generation and report whether every token matches."""
    from llm_playground.generate.trace import read_trace

    header, _ = read_trace(trace)
    info = header.get("model_info", {})

    def load(spec: str) -> LanguageModel:
        return ModelChoice(spec, info.get("dtype", "float32"), info.get("backend", "auto"), threads).load()

    report = replay_trace(trace, load)
    if report.ok:
        out.print(f"[green]match[/]: {report.matched}/{report.total} tokens identical ({report.model})")
        return
    m = report.first_mismatch or {}
    out.print(f"[red]mismatch[/]: {report.matched}/{report.total} tokens identical; first difference in "
              f"sequence {m.get('index', 0) + 1} at step {m.get('step')}: expected {m.get('expected')}, "
              f"got {m.get('actual')}")
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_command)
    app.command("chat")(chat_command)
    app.command("replay")(replay_command)
