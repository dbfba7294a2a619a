"""From what a user typed to a prompt: a user turn through the chat template, or raw text (a continuation).

Conversations (system prompt, history fitted to the context, template, ids) are `generate.chat`'s.
"""

from __future__ import annotations

from llm_playground.errors import InputError
from llm_playground.generate.chat import fit_history, render, with_system
from llm_playground.tokenizer.base import Message, Tokenizer

__all__ = ["build_prompt", "chat_messages", "fit_history", "render"]  # the chat names for older imports


def chat_messages(prompt: str, system: str | None = None) -> list[Message]:
    return with_system([{"role": "user", "content": prompt}], system)


def build_prompt(tokenizer: Tokenizer, prompt: str, system: str | None = None, raw: bool = False) -> str:
    """`--raw` feeds the text as is (a continuation); otherwise it is a user turn of a chat."""
    if not prompt.strip():
        raise InputError("the prompt is empty", "give some text to continue or answer")
    if raw:
        return f"{system}\n\n{prompt}" if system else prompt
    return render(tokenizer, chat_messages(prompt, system))

