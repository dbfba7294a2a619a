"""From what a user typed to the prompt's token ids: chat template or raw text, and history trimming."""

from __future__ import annotations

from collections.abc import Sequence

from llm_playground.errors import ContextOverflow, InputError
from llm_playground.tokenizer.base import Message, Tokenizer


def chat_messages(prompt: str, system: str | None = None) -> list[Message]:
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": prompt}]


def render(tokenizer: Tokenizer, messages: Sequence[Message]) -> str:
    """The conversation through the model's chat template, or a plain transcript without one."""
    text = tokenizer.apply_chat_template(messages)
    if text is not None:
        return text
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n".join([*lines, "Assistant:"])


def build_prompt(tokenizer: Tokenizer, prompt: str, system: str | None = None, raw: bool = False) -> str:
    """`--raw` feeds the text as is (a continuation); otherwise it is a user turn of a chat."""
    if not prompt.strip():
        raise InputError("the prompt is empty", "give some text to continue or answer")
    if raw:
        return f"{system}\n\n{prompt}" if system else prompt
    return render(tokenizer, chat_messages(prompt, system))


def fit_history(tokenizer: Tokenizer, messages: list[Message], budget: int) -> list[Message]:
    """Drop the oldest turns (never the system prompt or the last message) until the prompt fits `budget`."""
    system = [m for m in messages[:1] if m["role"] == "system"]
    turns = messages[len(system):]
    while len(turns) > 1 and len(tokenizer.encode(render(tokenizer, system + turns))) > budget:
        turns = turns[1:]
        while len(turns) > 1 and turns[0]["role"] != "user":
            turns = turns[1:]
    fitted = system + turns
    if len(tokenizer.encode(render(tokenizer, fitted))) > budget:
        raise ContextOverflow("the last message alone does not fit the context window",
                              "send a shorter message or lower max_new_tokens")
    return fitted
