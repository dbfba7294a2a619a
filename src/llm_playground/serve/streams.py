"""A job's step events as one response (`collect`) or as server-sent events (`stream`), chat or text.

Both consume the same events through the same `Choice` accumulators, so a streamed answer and a
whole one carry the same text, log-probabilities, finish reasons and usage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from llm_playground.errors import PlaygroundError
from llm_playground.serve.planning import Plan
from llm_playground.serve.protocol import api_error
from llm_playground.serve.responses import (
    Choice,
    echo_logprobs,
    envelope,
    finish_reason,
    new_id,
    sse,
    tool_outcome_choice,
    usage,
)
from llm_playground.serve.state import Tracker
from llm_playground.serve.worker import Job
from llm_playground.tokenizer.base import Tokenizer

log = logging.getLogger(__name__)
CLIENT_CLOSED = 499  # nginx's status for a client that left before the answer; only ever logged


def _choices(plan: Plan, tokenizer: Tokenizer, tracker: Tracker | None = None) -> list[Choice]:
    choices = [Choice(tokenizer, plan.top_logprobs)
               for _ in range(max(1, len(plan.generations), len(plan.prompts)) * plan.params.n)]
    if tracker is not None:
        tracker.partial = lambda: _partial(plan, choices)
    return choices


def _partial(plan: Plan, choices: list[Choice]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """What a request had generated when it was cut short (the client left): kept in the log."""
    output = [{"index": i, "text": "".join(c.text), "finish_reason": None} for i, c in enumerate(choices) if c.text]
    prompt = sum(len(g.prompt_ids) for g in plan.generations)
    completion = sum(c.tokens for c in choices)
    return output, {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def collect(kind: str, body: Any, plan: Plan, job: Job, tokenizer: Tokenizer, tracker: Tracker) -> dict:
    choices = _choices(plan, tokenizer, tracker)
    async for offset, event in job.stream():
        tracker.first_token()
        choices[offset * plan.params.n + event.index].push(event)
    tracker.queue_ms = job.queue_ms
    created, model = int(time.time()), body.model
    if plan.tool_call is not None:
        outcome = job.result
        tracker.first_token()
        message, finish = tool_outcome_choice(outcome)
        results = [[outcome.result]]
        out: list[dict[str, Any]] = [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]
    else:
        results = job.result
        out = []
        for offset, group in enumerate(results):
            for result in group:
                choice = choices[offset * plan.params.n + result.index]
                index = offset * plan.params.n + result.index
                if kind == "chat":
                    out.append({"index": index, "message": {"role": "assistant", "content": result.text},
                                "logprobs": choice.chat_logprobs(), "finish_reason": finish_reason(result)})
                elif plan.echo:  # the prompt, then the answer (logprobs of both)
                    prompt_ids = plan.prompts[offset]
                    scored = plan.echoed.get(offset)
                    if scored is not None:
                        choice.logprobs[:0] = echo_logprobs(tokenizer, prompt_ids, scored)
                    out.append({"index": index, "text": tokenizer.decode(prompt_ids) + result.text,
                                "logprobs": choice.text_logprobs(), "finish_reason": finish_reason(result)})
                else:
                    out.append({"index": index, "text": result.text, "logprobs": choice.text_logprobs(),
                                "finish_reason": finish_reason(result)})
    counts = usage(results)
    tracker.finish(200, out, counts, ",".join(sorted({c["finish_reason"] for c in out})))
    return envelope("chat.completion" if kind == "chat" else "text_completion",
                    new_id("chatcmpl" if kind == "chat" else "cmpl"), model, created, choices=out, usage=counts)


async def stream(kind: str, body: Any, plan: Plan, job: Job, tokenizer: Tokenizer,
                 tracker: Tracker) -> AsyncIterator[str]:
    chat = kind == "chat"
    request_id, created = new_id("chatcmpl" if chat else "cmpl"), int(time.time())
    extra = {"usage": None} if body.include_usage else {}

    def chunk(choice: dict[str, Any]) -> str:
        return sse(envelope("chat.completion.chunk" if chat else "text_completion", request_id, body.model,
                            created, choices=[choice], **extra))

    choices = _choices(plan, tokenizer, tracker)
    started: set[int] = set()
    finished = False
    try:
        async for offset, event in job.stream():
            tracker.first_token()
            index = offset * plan.params.n + event.index
            choice = choices[index]
            text, tokens = choice.push(event)
            if chat and index not in started:
                started.add(index)
                yield chunk({"index": index, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                             "finish_reason": None})
            if not text and not tokens:
                continue
            if chat:
                logprobs = choice.chat_logprobs(tokens) if tokens else None
                yield chunk({"index": index, "delta": {"content": text}, "logprobs": logprobs, "finish_reason": None})
            else:
                offset_chars = sum(len(t) for t in choice.text[:-1])
                yield chunk({"index": index, "text": text, "finish_reason": None,
                             "logprobs": choice.text_logprobs(tokens, offset_chars) if tokens else None})
        tracker.queue_ms = job.queue_ms
        finals: list[dict[str, Any]] = []
        if plan.tool_call is not None:
            tracker.first_token()
            message, finish = tool_outcome_choice(job.result)
            if not started:  # a word answer was streamed as it came; a call is sent whole
                delta = {"role": "assistant", "content": message["content"]}
                if message.get("tool_calls"):
                    delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
                yield chunk({"index": 0, "delta": delta, "logprobs": None, "finish_reason": None})
            finals.append({"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish})
            results, output = [[job.result.result]], [{"index": 0, "message": message, "finish_reason": finish}]
        else:
            results, output = job.result, []
            for offset, group in enumerate(results):
                for result in group:
                    index = offset * plan.params.n + result.index
                    final: dict[str, Any] = {"index": index, "finish_reason": finish_reason(result), "logprobs": None}
                    final["delta" if chat else "text"] = {} if chat else ""
                    finals.append(final)
                    output.append({"index": index, "text": result.text, "finish_reason": finish_reason(result)})
        for final in finals:
            yield chunk(final)
        counts = usage(results)
        if body.include_usage:
            yield sse(envelope("chat.completion.chunk" if chat else "text_completion", request_id, body.model,
                               created, choices=[], usage=counts))
        yield sse("[DONE]")
        finished = True
        tracker.finish(200, output, counts, ",".join(sorted({f["finish_reason"] for f in finals})))
    except PlaygroundError as exc:
        error = api_error(exc)
        tracker.finish(error.status, error=error.message)
        yield sse(error.body())
        yield sse("[DONE]")
        finished = True
    except Exception as exc:  # a bug: the client gets an error event instead of a stream that just stops
        log.exception("streaming failed")
        tracker.finish(500, error=f"internal error ({type(exc).__name__})")
        yield sse({"error": {"message": "internal error: the server failed on this request; it was logged",
                             "type": "server_error", "param": None, "code": None}})
        finished = True
    finally:
        if not finished:
            job.cancel()
            tracker.finish(CLIENT_CLOSED, error="the client disconnected")
