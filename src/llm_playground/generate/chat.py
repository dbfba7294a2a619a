"""The one chat turn, and one way to stream an answer from any chat model.

`chat_turn` turns messages into what a local model is fed: the system prompt first, the oldest turns
dropped until the prompt fits a token budget (never the system prompt, never the last message), the
model's chat template (or a plain transcript), the token ids. The CLI chat, the web app's chat and the
API server all build their prompts here (vLLM's single `_preprocess_chat` is the model).

`ChatModel.stream(messages, params)` is what a chat front end talks to: `LocalChatModel` over a
`LanguageModel` (the one generation loop), or `serve.client.RemoteChatModel` over an OpenAI-compatible
provider. Both yield text deltas and leave a `ChatReply` behind, so front ends never ask which it is.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from llm_playground.errors import ContextOverflow
from llm_playground.generate.loop import Generation, GenerationResult
from llm_playground.tokenizer.base import Message, Tokenizer

if TYPE_CHECKING:
    from llm_playground.generate.params import SamplingParams
    from llm_playground.model.base import LanguageModel


def with_system(messages: Sequence[Message], system: str | None) -> list[Message]:
    """The messages with `system` as the first (system) message, when one is given."""
    return ([{"role": "system", "content": system}] if system else []) + list(messages)


def render(tokenizer: Tokenizer, messages: Sequence[Message]) -> str:
    """The conversation through the model's chat template, or a plain transcript without one."""
    text = tokenizer.apply_chat_template(messages)
    if text is not None:
        return text
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


@dataclass(frozen=True)
class ChatTurn:
    messages: list[Message]  # what the model sees: the system prompt, then the turns that fit
    text: str  # the rendered prompt
    ids: list[int]
    dropped: int  # how many of the oldest messages were left out to fit the budget


def chat_turn(tokenizer: Tokenizer, messages: Sequence[Message], *, system: str | None = None,
              budget: int | None = None) -> ChatTurn:
    """The prompt of the next answer. With a `budget` (tokens), the oldest turns are dropped until the prompt
    fits it (a dropped user turn takes its answers with it); `ContextOverflow` if the last message alone
    does not. Without one, everything is kept (the API refuses what does not fit instead)."""
    messages = with_system(messages, system)
    head = [m for m in messages[:1] if m["role"] == "system"]
    turns = messages[len(head):]
    while True:
        text = render(tokenizer, head + turns)
        ids = tokenizer.encode(text)
        if budget is None or len(ids) <= budget:
            return ChatTurn(head + turns, text, ids, len(messages) - len(head) - len(turns))
        if len(turns) <= 1:
            raise ContextOverflow("the last message alone does not fit the context window",
                                  "send a shorter message or lower max_new_tokens")
        turns = turns[1:]
        while len(turns) > 1 and turns[0]["role"] != "user":
            turns = turns[1:]


def fit_history(tokenizer: Tokenizer, messages: list[Message], budget: int) -> list[Message]:
    """The messages `chat_turn` keeps within `budget` tokens."""
    return chat_turn(tokenizer, messages, budget=budget).messages


@dataclass
class ChatReply:
    """An answer once streamed: text, why it ended, counts and timings (local or remote alike)."""

    text: str = ""
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    model: str = ""
    ttft_ms: float | None = None
    total_ms: float = 0.0
    chunks: int = 0
    result: GenerationResult | None = None  # a local model's full result (prefill, tokens/s, seed)

    @property
    def completion_tokens(self) -> int:
        return (self.usage or {}).get("completion_tokens", self.chunks)


@dataclass
class ChatStream:
    """Iterate it for text deltas; `reply` is complete once the iteration ends (partial if it is stopped)."""

    _deltas: Iterator[str]
    reply: ChatReply = field(default_factory=ChatReply)
    generation: Generation | None = None  # a local model's loop, for front ends that show every token

    def __iter__(self) -> Iterator[str]:
        return self._deltas


@runtime_checkable
class ChatModel(Protocol):
    """What a chat front end talks to."""

    @property
    def label(self) -> str: ...

    def stream(self, messages: Sequence[dict[str, Any]], params: SamplingParams) -> ChatStream: ...


class LocalChatModel:
    """A `LanguageModel` as a `ChatModel`: the history fitted to its context window, the one generation loop."""

    def __init__(self, model: LanguageModel) -> None:
        self.model = model

    @property
    def label(self) -> str:
        return self.model.info.name

    def turn(self, messages: Sequence[Message], params: SamplingParams) -> ChatTurn:
        """The prompt, with room left in the context for `max_new_tokens`."""
        return chat_turn(self.model.tokenizer, messages, budget=self.model.context_length - params.max_new_tokens)

    def stream(self, messages: Sequence[dict[str, Any]], params: SamplingParams) -> ChatStream:
        turn = self.turn(messages, params)  # refused here, before anything is streamed
        generation = Generation(self.model, turn.ids, params.updated(n=1))
        reply = ChatReply(model=self.label)
        return ChatStream(self._deltas(generation, reply, len(turn.ids)), reply, generation)

    @staticmethod
    def _deltas(generation: Generation, reply: ChatReply, prompt_tokens: int) -> Iterator[str]:
        start = time.perf_counter()
        parts: list[str] = []
        try:
            for event in generation:
                if not event.text:
                    continue
                reply.chunks += 1
                reply.ttft_ms = reply.ttft_ms or (time.perf_counter() - start) * 1000
                parts.append(event.text)
                reply.text = "".join(parts)
                yield event.text
        finally:  # stopped halfway too: the reply holds what was said
            reply.total_ms = (time.perf_counter() - start) * 1000
            if generation.results:
                result = reply.result = generation.results[0]
                reply.text, reply.finish_reason = result.text, result.finish_reason
                reply.usage = {"prompt_tokens": prompt_tokens, "completion_tokens": result.completion_tokens}

