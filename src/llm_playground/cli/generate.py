"""`llmp generate`, `llmp chat` and `llmp replay`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console

from llm_playground.cli.options import (
    DEFAULT_CHOICE,
    ModelChoice,
    ThreadsOption,
    with_model_options,
    with_sampling_options,
)
from llm_playground.cli.paths import check_output
from llm_playground.errors import InputError, InvalidParameter, PlaygroundError
from llm_playground.generate import Generation, GenerationResult, SamplingParams
from llm_playground.generate.chat import ChatModel, ChatReply, LocalChatModel, with_system
from llm_playground.generate.prompt import build_prompt
from llm_playground.generate.trace import replay as replay_trace
from llm_playground.generate.trace import traced
from llm_playground.model import LanguageModel
from llm_playground.workspace import atomic_write_text

if TYPE_CHECKING:
    from llm_playground.serve.providers import Prices

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
    check_output(trace, "--trace")
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
    provider: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="chat with --model through a provider instead: openai, anthropic, google, ollama, vllm, llama.cpp, "
             "or any OpenAI-compatible URL (llmp serve too)", rich_help_panel="Provider")] = None,
    base_url: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="the provider's endpoint, replacing the preset's (e.g. a proxy or another port)",
        rich_help_panel="Provider")] = None,
    api_key_env: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="the environment variable holding the API key (default: the preset's, e.g. ANTHROPIC_API_KEY; "
             "OPENAI_API_KEY for a URL)", rich_help_panel="Provider")] = None,
) -> None:
    """Chat in the terminal: /reset, /params key=value, /save FILE, /quit."""
    prices = None
    if provider:
        from llm_playground.serve.client import ProviderClient, RemoteChatModel
        from llm_playground.serve.providers import load_prices, resolve
        from llm_playground.workspace import Workspace

        endpoint = resolve(provider, base_url, api_key_env)
        key_env = endpoint.key_env or ("OPENAI_API_KEY" if endpoint.provider is None else None)
        key = os.environ.get(key_env) if key_env else None
        if endpoint.provider is not None and endpoint.key_env and not key:
            raise InputError(f"{endpoint.provider} needs an API key: {endpoint.key_env} is not set",
                             f"export {endpoint.key_env}=… (or name another variable with --api-key-env)")
        if choice.model == DEFAULT_CHOICE.model and endpoint.provider is not None:
            raise InputError(f"which of {endpoint.provider}'s models?",
                             f"pass --model, e.g. --model {_example_model(endpoint.provider)}")
        model: ChatModel = RemoteChatModel(ProviderClient(endpoint.base_url, key or None), choice.model)
        prices = load_prices(Workspace.current().prices_path)
        banner = f"[bold]{model.label}[/]"
    else:
        model = LocalChatModel(choice.load())
        info = model.model.info
        banner = (f"[bold]{info.name}[/] ({info.parameters / 1e6:.0f}M parameters, {info.backend}, "
                  f"{info.dtype})")
    session = ChatSession(model, sampling, system, prices)
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

    def __init__(self, model: ChatModel, params: SamplingParams, system: str | None,
                 prices: Prices | None = None) -> None:
        self.model, self.params, self.system = model, params.updated(n=1), system
        self.messages: list[dict[str, str]] = []
        self.last_reply: ChatReply | None = None
        self.prices = prices  # a provider's price table: each answer's estimated cost, and the conversation's
        self.total_cost: float | None = None

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
        cost = ""
        if self.prices is not None:
            from llm_playground.serve.providers import format_cost

            usage = reply.usage or {}
            answer = self.prices.cost(reply.model, usage.get("prompt_tokens", 0), reply.completion_tokens)
            if answer is not None:
                self.total_cost = (self.total_cost or 0.0) + answer
                cost = (f", {usage.get('prompt_tokens', '?')} prompt tokens, ~{format_cost(answer)} "
                        f"(conversation ~{format_cost(self.total_cost)})")
            else:
                cost = f", cost: {reply.model} has no price in the table"
        return (f"[{reply.completion_tokens} tokens, {reply.finish_reason}, first token {reply.ttft_ms or 0:.0f} ms, "
                f"{reply.total_ms:.0f} ms in all{cost}, {self.model_name}]")

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
            path = check_output(Path(rest.strip()), "/save")
            assert path is not None
            record = {"model": self.model_name, "system": self.system,
                      "params": self.params.model_dump(mode="json"), "messages": self.messages}
            atomic_write_text(path, json.dumps(record, ensure_ascii=False, indent=2))
            err.print(f"[dim]saved {len(self.messages)} messages to {path}[/]")
        else:
            err.print("commands: /reset, /params key=value ..., /save FILE, /quit")
        return None


def _example_model(provider: str) -> str:
    from llm_playground.serve.providers import PROVIDERS

    return PROVIDERS[provider].example_model


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
