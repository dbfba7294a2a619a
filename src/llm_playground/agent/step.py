"""One step of a tool-using conversation: call a tool (which, with which arguments) or answer in words.

The conversation is OpenAI-shaped (`assistant` messages with `tool_calls`, then `tool` messages), so the
agent loop and `/v1/chat/completions` share this code. Three visible rules, each measured
(docs/agent.md):

1. **Call or answer?** The tools are ranked by `functions`' likelihood ranker (selection.py) together
   with one more candidate, `answer` ("reply in words…"). When `answer` ranks first there is no call.
   Left to itself under the grammar (`{"name": null}` allowed), the 135M model never chose "no call".
   The ranking depends on the task only, so it is computed once per task (`rank`).
2. **After a result**, a tool that has already returned a result is not offered again (the small model
   otherwise calls the same tool with the same arguments forever), and another tool is called only if
   the ranking gave it at least `FOLLOW_UP_MIN` of the probability; else the loop answers.
3. **The arguments** are decoded by `call_functions` for the chosen tool only, under its grammar.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_playground.functions.calling import CallContext, CallOutcome, ToolCall, call_functions, choice_probabilities
from llm_playground.functions.prompt import call_json
from llm_playground.functions.schema import FunctionSpec
from llm_playground.generate.chat import chat_turn
from llm_playground.generate.loop import Generation, GenerationResult
from llm_playground.generate.params import SamplingParams
from llm_playground.model.base import LanguageModel
from llm_playground.tokenizer.base import Message

ANSWER = FunctionSpec(
    name="answer", parameters={"type": "object", "properties": {}, "required": []},
    # Worded without the words of tool tasks ("no computation" made "Compute …" rank it first: the ranker
    # counts shared words as evidence).
    description="Reply in words from general knowledge: people, places, history, science, definitions, "
                "advice, opinions and stories.")
ANSWER_PARAMS = SamplingParams(temperature=0.0, max_new_tokens=96)
FOLLOW_UP_MIN = 0.2
ANSWER_INSTRUCTIONS = ("Answer the user's question in one or two sentences, using the tool results below. "
                       "State the result plainly.")


@dataclass
class Decision:
    call: ToolCall | None  # None: answer in words
    probs: dict[str, float]  # the ranking that chose (the tool or `answer`)
    outcome: CallOutcome | None  # the decoded call
    ms: float

    @property
    def prompt_tokens(self) -> int:
        return self.outcome.stats.prompt_tokens if self.outcome else 0

    @property
    def completion_tokens(self) -> int:
        return self.outcome.stats.tokens if self.outcome else 0


def task_of(messages: Sequence[dict[str, Any]]) -> str:
    return next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")


def called_tools(messages: Sequence[dict[str, Any]]) -> set[str]:
    """Tools whose call already has a result in the conversation after the last user message."""
    names: dict[str, str] = {}
    answered: set[str] = set()
    for message in messages:
        if message.get("role") == "user":
            names, answered = {}, set()
        for call in message.get("tool_calls") or []:
            names[call.get("id", "")] = call.get("function", {}).get("name", "")
        if message.get("role") == "tool":
            answered.add(names.get(message.get("tool_call_id", ""), message.get("name", "")))
    return {name for name in answered if name}


def template_messages(messages: Sequence[dict[str, Any]]) -> list[Message]:
    """OpenAI-shaped messages as the chat template's {role, content}: a call as the JSON the model writes
    under the grammar, a result as a `tool` turn (templates without that role get it as text)."""
    plain: list[Message] = []
    for message in messages:
        role, content = message.get("role"), message.get("content") or ""
        if role == "developer":
            role = "system"
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = call.get("function", {})
                arguments = function.get("arguments") or "{}"
                try:
                    parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
                except json.JSONDecodeError:
                    parsed = arguments
                calls.append(call_json(function.get("name"), parsed))
            content = "\n".join(filter(None, [content, *calls]))
        plain.append({"role": str(role), "content": str(content)})
    return plain


def rank(model: LanguageModel, task: str, tools: Sequence[FunctionSpec]) -> dict[str, float]:
    """The probability of each tool and of `answer` for this task (the ranker is shared per tool set)."""
    return choice_probabilities(CallContext.shared(model, [*tools, ANSWER]).ranker().scores(task))


def decide(model: LanguageModel, messages: Sequence[dict[str, Any]], tools: Sequence[FunctionSpec], *,
           params: SamplingParams | None = None, adapter: str = "default",
           probs: dict[str, float] | None = None) -> Decision:
    """Rules 1–3 above: the tool to call and its arguments, or None (answer in words). `probs` is the
    task's ranking when the caller has it already (`rank`)."""
    start = time.perf_counter()
    probs = probs if probs is not None else rank(model, task_of(messages), tools)
    used = called_tools(messages)
    open_probs = {name: p for name, p in probs.items() if name not in used}
    best = max(open_probs, key=open_probs.__getitem__)
    if best == ANSWER.name or (used and open_probs[best] < FOLLOW_UP_MIN):
        return Decision(None, probs, None, (time.perf_counter() - start) * 1000)
    outcome = call_functions(model, template_messages(messages), list(tools), tool_choice={"name": best},
                             params=params, adapter=adapter)
    call = outcome.calls[0] if outcome.calls else None
    return Decision(call, probs, outcome, (time.perf_counter() - start) * 1000)


def results_text(messages: Sequence[dict[str, Any]]) -> str:
    """The calls and results since the last user message, one line each: `calculator(expression="2+3") → 5`."""
    names: dict[str, str] = {}
    lines: list[str] = []
    for message in messages:
        if message.get("role") == "user":
            names, lines = {}, []
        for call in message.get("tool_calls") or []:
            function = call.get("function", {})
            names[call.get("id", "")] = f"{function.get('name')}({function.get('arguments') or ''})"
        if message.get("role") == "tool":
            called = names.get(message.get("tool_call_id", ""), str(message.get("name") or "tool"))
            lines.append(f"- {called} → {message.get('content')}")
    return "\n".join(lines)


def answer_in_words(model: LanguageModel, messages: Sequence[dict[str, Any]],
                    params: SamplingParams | None = None) -> GenerationResult:
    """The final answer, written by the model (the one loop) from the task and the results as plain lines:
    shown as JSON calls and `tool` turns, the 135M model answered with another JSON call."""
    results = results_text(messages)
    task = task_of(messages)
    system = [m for m in template_messages(messages) if m["role"] == "system"]
    if results:
        turn = [{"role": "system", "content": ANSWER_INSTRUCTIONS},
                {"role": "user", "content": f"{task}\n\nTool results:\n{results}"}]
    else:
        turn = [*system, {"role": "user", "content": task}]
    ids = chat_turn(model.tokenizer, turn).ids
    generation = Generation(model, ids, params or ANSWER_PARAMS)
    for _ in generation:
        pass
    return generation.results[0]
