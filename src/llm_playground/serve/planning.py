"""From a validated request to the work its model's worker runs: prompt ids, `SamplingParams`, constraint.

Everything that can be refused is refused here, on the event loop, before the request queues: bad
parameters, a prompt too long for the context, tools with n > 1. The work itself is the one generation
loop (`Generation`) or function calling (`call_functions`), nothing else.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from llm_playground.generate import Generation, GenerationResult, SamplingParams
from llm_playground.generate.chat import chat_turn
from llm_playground.model.base import LanguageModel
from llm_playground.serve.protocol import ApiError, ChatRequest, CompletionRequest, message_text, plain_messages
from llm_playground.serve.worker import Emit, Requeue

# OpenAI's defaults, which differ from the CLI's (temperature 0.7): a client that sends nothing gets
# what it would get from OpenAI.
API_TEMPERATURE = 1.0


@dataclass
class Plan:
    """What one request runs: several generations (one per prompt), or one function-calling pipeline."""

    params: SamplingParams
    generations: list[Generation] = field(default_factory=list)
    tool_call: Any = None  # (cancelled, emit) -> CallOutcome: function calling instead of generations
    top_logprobs: int | None = None  # None: no logprobs; k: the chosen token and k alternatives
    prompts: list[list[int]] = field(default_factory=list)  # completions: each prompt's ids
    echo: bool = False  # completions: each choice starts with its prompt
    model: Any = None  # for the prompt's log-probabilities (echo with logprobs)
    echoed: dict[int, list[Any]] = field(default_factory=dict)  # prompt → its tokens' (logprob, top) pairs
    _next: int = 0  # the next generation to run

    def run(self, emit: Emit, cancelled: threading.Event) -> Any:
        """One prompt's generations per turn: a request with many prompts goes back to the end of its
        model's queue between them (`Requeue`), so that it does not hold the worker from everyone else."""
        if self.tool_call is not None:
            return self.tool_call(cancelled, emit)
        if self.echo and self.top_logprobs is not None and not self.echoed:
            from llm_playground.generate.score import prompt_token_logprobs

            self.echoed = {i: prompt_token_logprobs(self.model, ids, self.top_logprobs)
                           for i, ids in enumerate(self.prompts)}
        if not self.generations:  # max_tokens 0: nothing to generate
            return [[_empty(ids, i) for i in range(self.params.n)] for ids in self.prompts]
        if self._next < len(self.generations):
            offset, self._next = self._next, self._next + 1
            for event in self.generations[offset]:
                if cancelled.is_set():
                    return None
                emit((offset, event))
            if self._next < len(self.generations):
                return Requeue(self.run)
        return [generation.results for generation in self.generations]


def _empty(prompt_ids: list[int], index: int) -> GenerationResult:
    return GenerationResult(index, "", [], "length", len(prompt_ids), 0.0, 0.0, 0)


def sampling_params(request: ChatRequest | CompletionRequest) -> SamplingParams:
    limit = request.token_limit
    return SamplingParams.create(
        max_new_tokens=limit, temperature=API_TEMPERATURE if request.temperature is None else request.temperature,
        top_p=request.top_p, frequency_penalty=request.frequency_penalty,
        presence_penalty=request.presence_penalty, top_k=None if request.top_k == -1 else request.top_k,
        min_p=request.min_p,
        repetition_penalty=request.repetition_penalty, seed=request.seed, n=request.n,
        stop=request.stop if request.stop else None)


def plan_chat(request: ChatRequest, model: LanguageModel, max_choices: int = 128) -> Plan:
    check_choices(1, request.n, max_choices)
    params = sampling_params(request)
    messages = plain_messages(request.messages)
    top = (request.top_logprobs or 0) if request.logprobs else None
    if request.tools and request.tool_choice != "none":
        return Plan(params, tool_call=_tool_call(request, model, messages, params))
    if isinstance(request.tool_choice, dict) or request.tool_choice == "required":
        raise ApiError(400, "tool_choice names a tool but no tools were given", param="tool_choice")
    constraint = _response_constraint(request, model, params)
    ids = chat_turn(model.tokenizer, messages).ids
    return Plan(params, [Generation(model, ids, params, constraint, alternatives=top or 0)], top_logprobs=top)


def check_choices(prompts: int, n: int, limit: int) -> None:
    if prompts * n > limit:
        raise ApiError(400, f"the request asks for {prompts} prompt(s) × n={n} = {prompts * n} choices; this server "
                       f"allows {limit} per request (llmp serve --max-choices): send fewer per request",
                       param="prompt" if prompts > 1 else "n")


def plan_completion(request: CompletionRequest, model: LanguageModel, max_choices: int = 128) -> Plan:
    prompt = request.prompt
    count = len(prompt) if isinstance(prompt, list) and prompt and isinstance(prompt[0], str) else 1
    check_choices(count, request.n, max_choices)  # before the prompts are even encoded
    if request.echo and request.stream:
        raise ApiError(400, "echo: not supported with stream; send the request without stream", param="echo")
    # max_tokens 0 (with echo: the prompt's log-probabilities only) is how evaluation harnesses score texts.
    scoring_only = request.token_limit == 0
    params = sampling_params(request.model_copy(update={"max_tokens": 1})) if scoring_only else sampling_params(
        request)
    prompts: list[list[int]]
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
        ids = [int(p) for p in prompt]
        if any(p < 0 or p >= model.tokenizer.vocab_size for p in ids):
            raise ApiError(400, "a prompt token id is outside the vocabulary", param="prompt")
        prompts = [ids]
    else:
        texts = [prompt] if isinstance(prompt, str) else [str(p) for p in prompt]
        prompts = [model.tokenizer.encode(text) for text in texts]
    if any(len(ids) > model.context_length for ids in prompts) and scoring_only:
        raise ApiError(400, f"a prompt is longer than the model's context of {model.context_length} tokens",
                       param="prompt", code="context_length_exceeded")
    top = request.logprobs
    generations = [] if scoring_only else [Generation(model, ids, params, alternatives=top or 0) for ids in prompts]
    return Plan(params, generations, top_logprobs=top, prompts=prompts, echo=request.echo, model=model)


def _response_constraint(request: ChatRequest, model: LanguageModel, params: SamplingParams) -> Any:
    kind = (request.response_format or {}).get("type", "text")
    if kind == "text":
        return None
    if params.n > 1:
        raise ApiError(400, "response_format decodes one sequence: use n=1", param="n")
    from llm_playground.functions import json_schema_constraint

    schema = {"type": "object"} if kind == "json_object" else (request.response_format or {})["json_schema"]["schema"]
    try:
        return json_schema_constraint(model.tokenizer, schema, model.info.vocab_size)
    except ValueError as exc:  # llguidance refuses schemas it cannot compile
        raise ApiError(400, f"response_format: the JSON schema cannot be used: {exc}",
                       param="response_format") from None


def _tool_call(request: ChatRequest, model: LanguageModel, messages: list[dict[str, str]],
               params: SamplingParams) -> Any:
    from llm_playground.functions import call_functions, specs_from_openai_tools

    if params.n > 1:
        raise ApiError(400, "tool calls decode one sequence: use n=1", param="n")
    functions = specs_from_openai_tools(request.tools or [])
    choice: Any = request.tool_choice or "auto"
    if isinstance(choice, dict):
        name = choice["function"]["name"]
        if name not in {spec.name for spec in functions}:
            raise ApiError(400, f"tool_choice names {name!r}, which is not among the tools", param="tool_choice")
        choice = {"name": name}
    # OpenAI defaults to parallel calls; here one call is the default, because the single-call pipeline
    # first picks the function by likelihood, which the small models need (see the README).
    parallel = bool(request.parallel_tool_calls)
    chat_ids = chat_turn(model.tokenizer, messages).ids
    if choice == "auto" and not parallel and _has_tool_results(request.messages):
        return _next_step(request, model, functions, params)

    def run(cancelled: threading.Event, emit: Emit) -> Any:
        outcome = call_functions(model, messages, functions, tool_choice=choice, parallel=parallel, params=params)
        if outcome.calls or choice != "auto" or cancelled.is_set():
            return outcome
        # Under "auto" the model chose no function: it answers in words, as a plain chat, streamed as
        # it comes (it is known not to be a call from here on).
        generation = Generation(model, chat_ids, params)
        for event in generation:
            if cancelled.is_set():
                break
            emit((0, event))
        if generation.results:
            outcome.text, outcome.result = generation.results[0].text, generation.results[0]
            outcome.words = True
        return outcome

    return run


def _has_tool_results(messages: list[dict[str, Any]]) -> bool:
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
    return any(m.get("role") == "tool" for m in messages[last_user + 1:])


def _next_step(request: ChatRequest, model: LanguageModel, functions: list[Any], params: SamplingParams) -> Any:
    """A conversation that already has tool results (an agent loop run by the client): the agent's step
    decides the next call or the answer in words, as `llmp agent` does (agent/step.py)."""
    from llm_playground.agent.step import answer_in_words, decide
    from llm_playground.functions.calling import CallOutcome, CallStats

    messages = [{**m, "content": message_text(m)} for m in request.messages]

    def run(cancelled: threading.Event, emit: Emit) -> Any:
        decision = decide(model, messages, functions, params=params)
        if decision.call is not None and decision.outcome is not None:
            return decision.outcome
        result = answer_in_words(model, messages, params)
        return CallOutcome([], result.text, result, CallStats(prompt_tokens=result.prompt_tokens,
                                                               tokens=result.completion_tokens), words=True)

    return run
