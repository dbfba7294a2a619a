"""Step events and results in OpenAI's shapes: chat and text completions, their stream chunks, logprobs, usage.

Log-probabilities are those the loop reports: after penalties, grammar and temperature, before
top-p truncation (so with temperature 0 they are those of temperature 1, the unscaled distribution).
"""

from __future__ import annotations

import json
import math
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from llm_playground.generate import GenerationResult, StepEvent
from llm_playground.tokenizer.base import Tokenizer

SYSTEM_FINGERPRINT = "llmp-0.1"
_FINISH = {"eos": "stop", "stop": "stop", "length": "length"}


def finish_reason(result: GenerationResult) -> str:
    return _FINISH[result.finish_reason]


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


_ALPHANUMERIC = string.ascii_letters + string.digits


def call_id() -> str:
    """A tool call id as OpenAI writes them: `call_` and 24 letters or digits."""
    return "call_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(24))


def _logprob(prob: float) -> float:
    return math.log(prob) if prob > 0 else -9999.0


@dataclass
class TokenLogprob:
    token: str
    logprob: float | None  # None: the first token of an echoed prompt (nothing before it to predict it)
    top: list[tuple[str, float]]

    def chat(self) -> dict[str, Any]:
        def entry(token: str, logprob: float | None) -> dict[str, Any]:
            return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}

        return {**entry(self.token, self.logprob), "top_logprobs": [entry(t, lp) for t, lp in self.top]}


@dataclass
class Choice:
    """One choice as its step events arrive: its text and, when asked, its tokens' log-probabilities."""

    tokenizer: Tokenizer
    top_logprobs: int | None
    text: list[str] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    last_step: int = -1
    first_token_at: float | None = None
    tokens: int = 0  # generated so far (what a cut request reports)

    def push(self, event: StepEvent) -> tuple[str, list[TokenLogprob]]:
        """(the text this event adds, the tokens it adds): the loop's final flush repeats a step, adds no token."""
        tokens = []
        if event.step != self.last_step:
            self.last_step = event.step
            self.tokens += 1
            self.first_token_at = self.first_token_at or time.perf_counter()
            # The end-of-turn token ends the answer without being part of it (as OpenAI reports it).
            if self.top_logprobs is not None and event.token_id not in self.tokenizer.stop_ids:
                top = [(self._piece(t), _logprob(p)) for t, p in event.top_alternatives[: self.top_logprobs]]
                tokens.append(TokenLogprob(self._piece(event.token_id), _logprob(event.prob), top))
                self.logprobs.extend(tokens)
        self.text.append(event.text)
        return event.text, tokens

    def _piece(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])

    def chat_logprobs(self, tokens: list[TokenLogprob] | None = None) -> dict[str, Any] | None:
        if self.top_logprobs is None:
            return None
        return {"content": [t.chat() for t in (self.logprobs if tokens is None else tokens)]}

    def text_logprobs(self, tokens: list[TokenLogprob] | None = None, offset: int = 0) -> dict[str, Any] | None:
        if self.top_logprobs is None:
            return None
        tokens = self.logprobs if tokens is None else tokens
        offsets, position = [], offset
        for token in tokens:
            offsets.append(position)
            position += len(token.token)
        return {"tokens": [t.token for t in tokens], "token_logprobs": [t.logprob for t in tokens],
                "top_logprobs": [dict(t.top) for t in tokens], "text_offset": offsets}


def echo_logprobs(tokenizer: Tokenizer, prompt_ids: list[int], scored: list[Any]) -> list[TokenLogprob]:
    """The prompt's tokens as logprobs entries (the first has none: nothing comes before it)."""
    piece = tokenizer.decode
    return [TokenLogprob(piece([token]), logprob, [(piece([t]), lp) for t, lp in top])
            for token, (logprob, top) in zip(prompt_ids, scored, strict=True)]


def usage(results: list[list[GenerationResult]]) -> dict[str, int]:
    """The prompt is counted once per prompt (its n sequences share one prefill)."""
    prompt = sum(r[0].prompt_tokens for r in results if r)
    completion = sum(r.completion_tokens for group in results for r in group)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def envelope(kind: str, request_id: str, model: str, created: int, **rest: Any) -> dict[str, Any]:
    return {"id": request_id, "object": kind, "created": created, "model": model,
            "system_fingerprint": SYSTEM_FINGERPRINT, **rest}


def tool_calls_message(outcome: Any) -> dict[str, Any]:
    calls = [{"id": call_id(), "type": "function",
              "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}}
             for call in outcome.calls]
    return {"role": "assistant", "content": None, "tool_calls": calls}


def tool_outcome_choice(outcome: Any) -> tuple[dict[str, Any], str]:
    """(the assistant message, the finish reason) of a function-calling outcome."""
    if outcome.calls:
        return tool_calls_message(outcome), "tool_calls"
    if outcome.words:  # "auto", answered in words
        return {"role": "assistant", "content": outcome.text or ""}, finish_reason(outcome.result)
    # No call came out of the grammar, most often because max_tokens cut it: a fragment like `{"name":"`
    # is neither a call nor an answer, so none is sent.
    cut = outcome.result is not None and outcome.result.finish_reason == "length"
    return {"role": "assistant", "content": ""}, "length" if cut else "stop"


def sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"
