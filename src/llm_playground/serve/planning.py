"""From a validated request to the work its model's worker runs: prompt ids, `SamplingParams`, constraint.

Everything that can be refused is refused here, on the event loop, before the request queues: bad
parameters, a prompt too long for the context, tools with n > 1. The work itself is the one generation
loop (`Generation`) or function calling (`call_functions`), nothing else.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, cast

from llm_playground.generate import Generation, SamplingParams
from llm_playground.generate.prompt import render
from llm_playground.model.base import LanguageModel
from llm_playground.serve.protocol import ApiError, ChatRequest, CompletionRequest, plain_messages
from llm_playground.serve.worker import Emit

# OpenAI's defaults, which differ from the CLI's (temperature 0.7): a client that sends nothing gets
# what it would get from OpenAI.
API_TEMPERATURE = 1.0


@dataclass
class Plan:
    """What one request runs: several generations (one per prompt), or one function-calling pipeline."""

    params: SamplingParams
    generations: list[Generation] = field(default_factory=list)
    tool_call: Any = None  # (cancelled) -> CallOutcome: function calling instead of generations
    top_logprobs: int | None = None  # None: no logprobs; k: the chosen token and k alternatives

    def run(self, emit: Emit, cancelled: threading.Event) -> Any:
        if self.tool_call is not None:
            return self.tool_call(cancelled)
        for offset, generation in enumerate(self.generations):
            for event in generation:
                if cancelled.is_set():
                    return None
                emit((offset, event))
        return [generation.results for generation in self.generations]


def sampling_params(request: ChatRequest | CompletionRequest) -> SamplingParams:
    limit = request.token_limit
    return SamplingParams.create(
        max_new_tokens=limit, temperature=API_TEMPERATURE if request.temperature is None else request.temperature,
        top_p=request.top_p, frequency_penalty=request.frequency_penalty,
        presence_penalty=request.presence_penalty, top_k=request.top_k, min_p=request.min_p,
        repetition_penalty=request.repetition_penalty, seed=request.seed, n=request.n,
        stop=request.stop if request.stop else None)


def plan_chat(request: ChatRequest, model: LanguageModel) -> Plan:
    params = sampling_params(request)
    messages = plain_messages(request.messages)
    top = (request.top_logprobs or 0) if request.logprobs else None
    if request.tools and request.tool_choice != "none":
        return Plan(params, tool_call=_tool_call(request, model, messages, params))
    if isinstance(request.tool_choice, dict) or request.tool_choice == "required":
        raise ApiError(400, "tool_choice names a tool but no tools were given", param="tool_choice")
    constraint = _response_constraint(request, model, params)
    ids = model.tokenizer.encode(render(model.tokenizer, messages))
    return Plan(params, [Generation(model, ids, params, constraint, alternatives=top or 0)], top_logprobs=top)


def plan_completion(request: CompletionRequest, model: LanguageModel) -> Plan:
    params = sampling_params(request)
    prompt = request.prompt
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
        token_ids = cast("list[int]", prompt)  # all ints: checked just above
        if any(p < 0 or p >= model.tokenizer.vocab_size for p in token_ids):
            raise ApiError(400, "a prompt token id is outside the vocabulary", param="prompt")
        prompts = [list(token_ids)]
    else:
        texts = [prompt] if isinstance(prompt, str) else cast("list[str]", prompt)
        prompts = [model.tokenizer.encode(text) for text in texts]
    top = request.logprobs
    return Plan(params, [Generation(model, ids, params, alternatives=top or 0) for ids in prompts], top_logprobs=top)


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
    chat_ids = model.tokenizer.encode(render(model.tokenizer, messages))

    def run(cancelled: threading.Event) -> Any:
        outcome = call_functions(model, messages, functions, tool_choice=choice, parallel=parallel, params=params)
        if outcome.calls or choice != "auto" or cancelled.is_set():
            return outcome
        # Under "auto" the model chose no function: it answers in words, as a plain chat.
        generation = Generation(model, chat_ids, params)
        for _ in generation:
            if cancelled.is_set():
                break
        if generation.results:
            outcome.text, outcome.result = generation.results[0].text, generation.results[0]
        return outcome

    return run
