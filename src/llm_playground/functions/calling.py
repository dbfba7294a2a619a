"""Request → function call, decoded under a grammar built from the definitions, then validated.

1. the prompt: chat template + instructions + the function list (prompt.py);
2. which function: the candidates ranked by likelihood (selection.py: how likely the request makes each
   function's description and the reverse, plus the rare words they share), not by the model's first
   differing name token, a poor judge in a 135M model;
3. the arguments: decoded by the one generation loop under an llguidance grammar that allows only the
   chosen function's arguments with their declared types, so the JSON is valid by construction, with the
   LoRA adapter merged into the weights when there is one (adapter.py; the ranking keeps the plain model);
4. Pydantic validation of the parsed call (defence in depth) into a `FunctionCallResult`.
"""

from __future__ import annotations

import json
import math
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_playground.errors import ContextOverflow, InputError
from llm_playground.functions.adapter import DEFAULT as DEFAULT_ADAPTER
from llm_playground.functions.adapter import model_for_calls
from llm_playground.functions.grammar import ConstraintStats, GrammarConstraint, schema_grammar
from llm_playground.functions.helps import DEFAULT as HELPS_DEFAULT
from llm_playground.functions.helps import call_evidence, narrow, snap_strings
from llm_playground.functions.prompt import call_json, call_prompt
from llm_playground.functions.schema import FunctionSpec
from llm_playground.functions.selection import FunctionRanker
from llm_playground.functions.split import split_request
from llm_playground.functions.validate import FunctionCallResult, validate_call
from llm_playground.generate.loop import GenerationResult, PromptCache, generate
from llm_playground.generate.params import SamplingParams
from llm_playground.model.base import LanguageModel
from llm_playground.tokenizer.base import Message

MAX_STRING = 256  # a free string the model never closes ends here, still valid JSON
# A list the model never closes ends here: unbounded, a 135M model repeats items ("", "", …) until the
# token limit cuts the JSON and no call is left (9 of 300 held-out single calls under "required").
MAX_ITEMS = 16
# The second try when a required call still came out cut or invalid: short strings and lists, so that any
# declared function fits in the answer's tokens.
RETRY_STRING, RETRY_ITEMS = 48, 4
GREEDY = SamplingParams(temperature=0.0, max_new_tokens=256)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass
class CallStats:
    prompt_tokens: int = 0
    tokens: int = 0
    forced_tokens: int = 0
    forward_ms: float = 0.0
    mask_ms: float = 0.0
    choose_ms: float = 0.0
    total_ms: float = 0.0
    valid: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in vars(self).items()}


@dataclass
class CallOutcome:
    calls: list[ToolCall]
    text: str | None  # the raw JSON the model wrote
    result: GenerationResult | None
    stats: CallStats
    choice_probs: dict[str, float] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    validated: list[FunctionCallResult] = field(default_factory=list)
    words: bool = False  # no call: `text` and `result` are a plain answer in words (tool_choice "auto")


def argument_schema(spec: FunctionSpec, strings: int = MAX_STRING, items: int = MAX_ITEMS) -> dict[str, Any]:
    properties = {name: _bounded(schema, strings, items) for name, schema in spec.properties.items()}
    return {"type": "object", "properties": properties, "required": spec.required, "additionalProperties": False}


def _bounded(schema: dict[str, Any], strings: int = MAX_STRING, items: int = MAX_ITEMS) -> dict[str, Any]:
    if schema.get("type") == "string" and "enum" not in schema:
        least = schema.get("minLength", 0)
        return {**schema, "maxLength": max(least, min(schema.get("maxLength", strings), strings))}
    if schema.get("type") == "array":
        least = schema.get("minItems", 0)
        bounded = {**schema, "maxItems": max(least, min(schema.get("maxItems", items), items))}
        if isinstance(schema.get("items"), dict):
            bounded["items"] = _bounded(schema["items"], strings, items)
        return bounded
    if schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
        # Closed like the top level, unless the schema opens it: else the model invents keys.
        return {"additionalProperties": False, **schema,
                "properties": {k: _bounded(v, strings, items) for k, v in schema["properties"].items()}}
    return schema


def call_schema(functions: Sequence[FunctionSpec], parallel: bool = False, allow_none: bool = False,
                strings: int = MAX_STRING, items: int = MAX_ITEMS) -> dict[str, Any]:
    """The JSON Schema of an answer: one call (or a list of calls) to a declared function."""
    options = [{"type": "object", "properties": {"name": {"const": f.name},
                                                 "parameters": argument_schema(f, strings, items)},
                "required": ["name", "parameters"], "additionalProperties": False} for f in functions]
    if allow_none:
        options.append(_none_schema())
    one = options[0] if len(options) == 1 else {"anyOf": options}
    return {"type": "array", "items": one, "minItems": 1, "maxItems": MAX_ITEMS} if parallel else one


def choice_probabilities(scores: dict[str, float]) -> dict[str, float]:
    top = max(scores.values())
    weights = {name: math.exp(score - top) for name, score in scores.items()}
    total = sum(weights.values())
    return {name: w / total for name, w in weights.items()}


def call_functions(model: LanguageModel, messages: Sequence[Message], functions: Sequence[FunctionSpec], *,
                   tool_choice: str | dict[str, Any] = "required", parallel: bool = False,
                   allow_none: bool = False, params: SamplingParams | None = None,
                   context: CallContext | None = None, adapter: str | Path | None = DEFAULT_ADAPTER,
                   split: bool = True, helps: Iterable[str] | None = None) -> CallOutcome:
    """Decode the call(s) a conversation asks for. `tool_choice` is "required", "auto" (a call or none)
    or {"name": NAME} (that function); "none" is a plain chat and not handled here. A `CallContext`
    shared by many calls over the same functions keeps what does not depend on the request. `adapter`
    chooses the weights the arguments are decoded with (see adapter.py): "default", "none" or a path.
    With `parallel`, the request is cut into the single requests it holds (split.py) and each is ranked
    and decoded as a single call; `split=False` decodes one list of calls under the grammar instead.
    `helps` names the decoding helps of helps.py to use (default: all of them; `()` for none)."""
    start = time.perf_counter()
    if not functions:
        raise InputError("no functions to call", "give at least one function definition")
    if not any(m["role"] == "user" for m in messages):
        raise InputError("the conversation has no user message, and a function call answers one",
                         "add a user message that asks for something")
    if not any(m.get("content", "").strip() for m in messages if m["role"] == "user"):
        raise InputError("the request is empty", "give a prompt that asks for something")
    params = params or GREEDY
    # The adapter decodes the arguments only: the function is ranked with the plain model (measured on the
    # public prompts: 11/11 right with it, 8/11 with the adapted one, which loses the regex requests).
    call_model = model_for_calls(model, adapter)
    request = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    budget = model.context_length - params.max_new_tokens - 64
    if budget < 16:
        most = max(1, model.context_length - 64 - 16)
        raise ContextOverflow(f"{model.info.name}'s context of {model.context_length} tokens is too short for a "
                              f"function call ({params.max_new_tokens} for the answer, the prompt beside it)",
                              f"ask for at most {most} tokens for the answer (max_tokens)")
    if len(model.tokenizer.encode(request)) > budget:
        raise ContextOverflow(f"the request is longer than the model's context allows ({budget} tokens)",
                              "shorten the request")
    candidates, allow_none = _candidates(functions, tool_choice, allow_none)
    chosen_helps = frozenset(HELPS_DEFAULT if helps is None else helps)
    if parallel and split:
        return _parallel(model, messages, functions, request, tool_choice=tool_choice, allow_none=allow_none,
                         params=params, context=context, adapter=adapter, start=start, helps=chosen_helps)
    stats = CallStats()
    if allow_none and "no_call" in chosen_helps:
        # Under "auto" the request's own words decide whether any function fits (helps.py).
        if call_evidence(request, candidates) < 1:
            stats.valid, stats.total_ms = True, (time.perf_counter() - start) * 1000
            return CallOutcome([], call_json(None, {}), None, stats)
        allow_none = False
    probs: dict[str, float] = {}
    if not parallel and len(candidates) > 1:
        ranking = context if context is not None and context.functions == candidates else CallContext.shared(
            model, candidates)
        probs = choice_probabilities(ranking.ranker().scores(request))
        best = max(probs, key=probs.__getitem__)
        candidates = [f for f in candidates if f.name == best]
        stats.choose_ms = (time.perf_counter() - start) * 1000
    # Only the chosen function is shown while its arguments are decoded: the model then copies values
    # from the request instead of from other functions' names.
    prompt_ids = model.tokenizer.encode(call_prompt(model.tokenizer, messages, candidates))
    stats.prompt_tokens = len(prompt_ids)
    decoded = [narrow(c, request, chosen_helps) for c in candidates] if chosen_helps else candidates
    owner = context if context is not None and context.model is call_model else CallContext.shared(call_model,
                                                                                                   functions)
    prefix = owner.prompt_cache(candidates)
    schema = call_schema(decoded, parallel, allow_none)
    events, result, constraint = _decode(call_model, prompt_ids, schema, params, prefix)
    calls, validated = _parse(result.text, functions, parallel)
    if not calls and not allow_none:
        # A call is required and none came out (cut by the token limit, or invalid after the helps'
        # narrowing): decode once more without the helps, with short strings and lists, so there is one.
        schema = call_schema(candidates, parallel, False, RETRY_STRING, RETRY_ITEMS)
        events, result, constraint = _decode(call_model, prompt_ids, schema, params, prefix)
        calls, validated = _parse(result.text, functions, parallel)
    text = result.text
    stats.tokens, stats.forced_tokens = result.completion_tokens, constraint.stats.forced_tokens
    stats.mask_ms = constraint.stats.mask_ms
    stats.forward_ms = max(0.0, result.prefill_ms + result.decode_ms - stats.mask_ms)
    outcome = CallOutcome(calls, text, result, stats, probs, _steps(events, constraint.stats, model))
    outcome.validated = validated
    if "spans" in chosen_helps and outcome.calls:
        by_name = {f.name: f for f in functions}
        snapped = [ToolCall(c.name, snap_strings(c.arguments, by_name[c.name], request)) for c in outcome.calls]
        if snapped != outcome.calls:
            outcome.calls = snapped
            outcome.text = (call_json(snapped[0].name, snapped[0].arguments) if not parallel else
                            "[" + ",".join(call_json(c.name, c.arguments) for c in snapped) + "]")
    stats.valid = bool(outcome.validated) or (allow_none and not outcome.calls and _is_none(text))
    stats.total_ms = (time.perf_counter() - start) * 1000
    return outcome


def _decode(model: LanguageModel, prompt_ids: list[int], schema: dict[str, Any], params: SamplingParams,
            prefix: PromptCache | None) -> tuple[list[Any], GenerationResult, GrammarConstraint]:
    constraint = GrammarConstraint(model.tokenizer, schema_grammar(schema), model.info.vocab_size, bound_numbers=True)
    generation = generate(model, prompt_ids, params.updated(n=1), constraint, prompt_cache=prefix)
    events = list(generation)
    return events, generation.results[0], constraint


def _parallel(model: LanguageModel, messages: Sequence[Message], functions: Sequence[FunctionSpec], request: str,
              *, start: float, **options: Any) -> CallOutcome:
    """Several calls: each part of the request (split.py) through the single-call pipeline, in order."""
    verbs = frozenset(w for f in functions for w in f.name.lower().replace("-", "_").split("_")
                      if len(w) > 2 and w not in _NOT_VERBS)
    parts = split_request(request, verbs)
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    stats, calls, validated = CallStats(), [], []
    probs: dict[str, float] = {}
    steps: list[dict[str, Any]] = []
    outcome, stats.valid = None, True
    for part in parts:
        asked = [*messages[:last], {**messages[last], "content": part}, *messages[last + 1:]]
        outcome = call_functions(model, asked, functions, parallel=False, **options)
        for key in ("prompt_tokens", "tokens", "forced_tokens", "forward_ms", "mask_ms", "choose_ms"):
            setattr(stats, key, getattr(stats, key) + getattr(outcome.stats, key))
        stats.valid = stats.valid and outcome.stats.valid
        calls += outcome.calls
        validated += outcome.validated
        probs = probs or outcome.choice_probs
        steps += outcome.steps
    text = "[" + ",".join(call_json(c.name, c.arguments) for c in calls) + "]"
    stats.total_ms = (time.perf_counter() - start) * 1000
    return CallOutcome(calls, text, outcome.result if outcome else None, stats, probs, steps, validated)


_NOT_VERBS = frozenset("the and for with from get set numbers number string text value values data info fn".split())


class CallContext:
    """What many calls over the same functions share: the ranker, and each prompt's fixed prefix (the
    system prompt with the function list) fed once and reused through its KV cache.

    `shared` keeps the last few per model, so every front end (CLI batch, web app, API server) reuses them
    across requests without holding one itself."""

    _SHARED: weakref.WeakKeyDictionary[Any, OrderedDict[str, CallContext]] = weakref.WeakKeyDictionary()
    _SHARED_PER_MODEL = 8
    _SHARED_LOCK = threading.Lock()

    @classmethod
    def shared(cls, model: LanguageModel, functions: Sequence[FunctionSpec]) -> CallContext:
        key = json.dumps([f.model_dump(mode="json") for f in functions], sort_keys=True)
        with cls._SHARED_LOCK:
            contexts = cls._SHARED.setdefault(model, OrderedDict())
            context = contexts.pop(key, None) or cls(model, functions)
            contexts[key] = context
            while len(contexts) > cls._SHARED_PER_MODEL:
                contexts.popitem(last=False)
        return context

    def __init__(self, model: LanguageModel, functions: Sequence[FunctionSpec]) -> None:
        self.model, self.functions = model, list(functions)
        self._ranker: FunctionRanker | None = None
        self._prefixes: dict[tuple, PromptCache | None] = {}

    def ranker(self) -> FunctionRanker:
        if self._ranker is None:
            self._ranker = FunctionRanker(self.model, self.functions)
        return self._ranker

    def prompt_cache(self, functions: Sequence[FunctionSpec]) -> PromptCache | None:
        key = tuple(f.name for f in functions)
        if key not in self._prefixes:
            # The prefix any request shares: where two renders with different requests stop agreeing.
            encode, tokenizer = self.model.tokenizer.encode, self.model.tokenizer
            first, second = (encode(call_prompt(tokenizer, [{"role": "user", "content": text}], functions))
                             for text in ("A", "Z"))
            shared = next((i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), 0)
            self._prefixes[key] = PromptCache(self.model, first[:shared]) if shared > 8 else None
        return self._prefixes[key]


def _candidates(functions: Sequence[FunctionSpec], tool_choice: str | dict[str, Any], allow_none: bool
                ) -> tuple[list[FunctionSpec], bool]:
    if isinstance(tool_choice, dict):
        name = tool_choice.get("name") or tool_choice.get("function", {}).get("name")
        chosen = [f for f in functions if f.name == name]
        if not chosen:
            raise InputError(f"tool_choice names {name!r}, which is not among the functions",
                             f"use one of: {', '.join(f.name for f in functions)}")
        return chosen, False
    if tool_choice == "auto":
        return list(functions), True
    if tool_choice == "required":
        return list(functions), allow_none
    raise InputError(f"unknown tool_choice {tool_choice!r}", "use auto, required, none or {\"name\": ...}")


def _none_schema() -> dict[str, Any]:
    return {"type": "object", "properties": {"name": {"type": "null"},
                                             "parameters": {"type": "object", "maxProperties": 0}},
            "required": ["name", "parameters"], "additionalProperties": False}


def _is_none(text: str) -> bool:
    try:
        return json.loads(text).get("name") is None
    except (json.JSONDecodeError, AttributeError):
        return False


def _parse(text: str, functions: Sequence[FunctionSpec], parallel: bool
           ) -> tuple[list[ToolCall], list[FunctionCallResult]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return [], []
    items = data if parallel and isinstance(data, list) else [data]
    calls, validated = [], []
    by_name = {f.name: f for f in functions}
    for item in items:
        if not isinstance(item, dict) or item.get("name") is None:
            continue
        spec = by_name.get(item["name"])
        if spec is None:
            return [], []
        checked = validate_call(spec, item.get("parameters", {}))
        if checked is None:
            return [], []
        validated.append(checked)
        calls.append(ToolCall(checked.name, checked.parameters))
    return calls, validated


def _steps(events: Sequence[Any], stats: ConstraintStats, model: LanguageModel) -> list[dict[str, Any]]:
    """Per step: the token, its probability, the alternatives, and how many tokens the grammar allowed."""
    counts = iter(stats.allowed_counts)
    token_text = model.tokenizer.token_text
    steps: list[dict[str, Any]] = []
    for event in events:
        if event.step < len(steps):  # the loop's final flush event repeats the last token
            continue
        steps.append({"step": event.step, "token_id": event.token_id, "token": token_text(event.token_id),
                      "prob": round(event.prob, 6), "forced": event.forced,
                      "allowed": 1 if event.forced else next(counts, None),
                      "top": [[token_text(i), round(p, 6)] for i, p in event.top_alternatives]})
    return steps
