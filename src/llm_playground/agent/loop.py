"""The agent loop: at each step the model calls one tool or answers; results go back as `tool` messages.

    task ─▶ decide (step.py) ─▶ call ─▶ run the tool (tools.py) ─▶ `tool` message ─▶ decide ─▶ … ─▶ answer

It ends with a status: `answered`; `max_steps` (the step limit came first); `repeated_call` (the model
asked for a call it had already made: its result is known, so the loop answers from it instead). Tool
errors and timeouts are results like any other. Every step is yielded as it happens (the web app shows
them live) and recorded in the run store when one is given.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from llm_playground.agent.answer import MODES, templated_answer
from llm_playground.agent.records import RunStore, StepRecord
from llm_playground.agent.step import answer_in_words, decide, rank
from llm_playground.agent.tools import Tool, run_tool
from llm_playground.errors import InputError
from llm_playground.model.base import LanguageModel

DEFAULT_MAX_STEPS = 6
STATUSES = ("answered", "max_steps", "repeated_call", "error")


@dataclass
class AgentRun:
    task: str
    status: str = "running"
    answer: str | None = None
    answer_mode: str | None = None  # "model" or "template"
    steps: list[StepRecord] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    run_id: int | None = None
    ms: float = 0.0

    @property
    def calls(self) -> list[StepRecord]:
        return [s for s in self.steps if s.kind == "call"]


def check_options(max_steps: int, answer: str) -> None:
    if max_steps < 1:
        raise InputError(f"--max-steps must be at least 1, got {max_steps}", "use --max-steps 6")
    if answer not in MODES:
        raise InputError(f"unknown answer mode {answer!r}", f"use one of: {', '.join(MODES)}")


class Agent:
    def __init__(self, model: LanguageModel, tools: Sequence[Tool], *, max_steps: int = DEFAULT_MAX_STEPS,
                 answer: str = "model", store: RunStore | None = None, model_name: str | None = None) -> None:
        check_options(max_steps, answer)
        self.model, self.tools = model, {tool.name: tool for tool in tools}
        self.max_steps, self.answer_mode, self.store = max_steps, answer, store
        self.model_name = model_name or model.info.name

    def run(self, task: str) -> AgentRun:
        run = AgentRun(task)
        for _ in self.iter_run(task, run):
            pass
        return run

    def iter_run(self, task: str, run: AgentRun | None = None) -> Iterator[StepRecord]:
        """Yields each step as soon as it is done; `run` holds the status and answer at the end."""
        if not task.strip():
            raise InputError("the task is empty", "give the agent something to do")
        run = run if run is not None else AgentRun(task)
        run.messages = [{"role": "user", "content": task}]
        start = time.perf_counter()
        if self.store is not None:
            run.run_id = self.store.start(task, self.model_name, list(self.tools))
        try:
            yield from self._steps(run)
        except BaseException as exc:
            run.status = "error"
            self._finish(run, start, error=f"{type(exc).__name__}: {exc}")
            raise
        self._finish(run, start)

    def _steps(self, run: AgentRun) -> Iterator[StepRecord]:
        specs = [tool.spec for tool in self.tools.values()]
        made: set[str] = set()
        start = time.perf_counter()
        probs = rank(self.model, run.task, specs)
        rank_ms = (time.perf_counter() - start) * 1000  # counted in the first step's time
        for number in range(1, self.max_steps + 1):
            decision = decide(self.model, run.messages, specs, probs=probs)
            if number == 1:
                decision.ms += rank_ms
            call = decision.call
            key = None if call is None else f"{call.name}:{sorted(call.arguments.items())!r}"
            if call is None or key in made:
                run.status = "answered" if call is None else "repeated_call"
                yield self._record(run, self._answer(run, number, decision.ms))
                return
            made.add(str(key))
            result = run_tool(self.tools[call.name], call.arguments)
            call_id = f"call_{number}"
            run.messages += [
                {"role": "assistant", "content": None, "tool_calls": [{
                    "id": call_id, "type": "function",
                    "function": {"name": call.name, "arguments": _json(call.arguments)}}]},
                {"role": "tool", "tool_call_id": call_id, "name": call.name, "content": result.text}]
            step = StepRecord(step=number, kind="call", tool=call.name, arguments=call.arguments, result=result.text,
                              error=result.error, prompt_tokens=decision.prompt_tokens,
                              completion_tokens=decision.completion_tokens, ms=decision.ms + result.ms,
                              tool_ms=result.ms, value=result.value)
            yield self._record(run, step)
        run.status = "max_steps"

    def _answer(self, run: AgentRun, number: int, decide_ms: float) -> StepRecord:
        start = time.perf_counter()
        calls = [s for s in run.calls if s.error is None]
        text = None
        if self.answer_mode == "template" and len(calls) == 1 and len(run.calls) == 1:
            text = templated_answer(calls[0].tool or "", calls[0].arguments or {}, calls[0].value)
        if text is not None:
            run.answer, run.answer_mode = text, "template"
            return StepRecord(step=number, kind="answer", result=text,
                              ms=decide_ms + (time.perf_counter() - start) * 1000)
        result = answer_in_words(self.model, run.messages)
        run.answer, run.answer_mode = result.text.strip(), "model"
        return StepRecord(step=number, kind="answer", result=run.answer, prompt_tokens=result.prompt_tokens,
                          completion_tokens=result.completion_tokens,
                          ms=decide_ms + (time.perf_counter() - start) * 1000)

    def _record(self, run: AgentRun, step: StepRecord) -> StepRecord:
        run.steps.append(step)
        if self.store is not None and run.run_id is not None:
            self.store.add_step(run.run_id, step)
        return step

    def _finish(self, run: AgentRun, start: float, error: str | None = None) -> None:
        run.ms = (time.perf_counter() - start) * 1000
        if self.store is not None and run.run_id is not None:
            self.store.finish(run.run_id, status=run.status, answer=run.answer, answer_mode=run.answer_mode,
                              ms=run.ms, error=error)


def _json(arguments: dict[str, Any]) -> str:
    import json

    return json.dumps(arguments, ensure_ascii=False)
