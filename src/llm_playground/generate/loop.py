"""The one generation loop: prefill once, then one token per step over the KV cache.

Every front end (CLI, web app, API, function calling, explorers) iterates a `Generation`; it yields a
`StepEvent` per token and leaves a `GenerationResult` per sequence in `results`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from llm_playground.errors import ContextOverflow, InputError
from llm_playground.generate import processors as P
from llm_playground.generate.constraint import Constraint
from llm_playground.generate.params import SamplingParams
from llm_playground.generate.text import IncrementalDetokenizer, StopMatcher
from llm_playground.model.base import KVCache, LanguageModel

FinishReason = Literal["stop", "length", "eos"]


@dataclass(frozen=True)
class StepEvent:
    index: int  # which of the n sequences
    step: int
    token_id: int
    text: str  # the text this step makes safe to show (may be empty while a character is incomplete)
    prob: float  # after penalties, grammar and temperature, before top-k/top-p/min-p
    top_alternatives: tuple[tuple[int, float], ...]
    ms: float
    forced: bool = False


@dataclass
class GenerationResult:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: FinishReason
    prompt_tokens: int
    prefill_ms: float
    decode_ms: float
    seed: int

    @property
    def completion_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens after the first (which the prefill produced) per second of decoding."""
        return (self.completion_tokens - 1) / (self.decode_ms / 1000) if self.decode_ms > 0 else 0.0

    def to_dict(self) -> dict:
        return {"index": self.index, "text": self.text, "token_ids": self.token_ids,
                "finish_reason": self.finish_reason, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "prefill_ms": round(self.prefill_ms, 2),
                "decode_ms": round(self.decode_ms, 2),
                "decode_tokens_per_s": round(self.decode_tokens_per_s, 2), "seed": self.seed}


def fit_prompt(prompt_ids: Sequence[int], params: SamplingParams, context_length: int) -> list[int]:
    """The prompt as it will be fed: checked, or left-truncated under the `truncate` policy."""
    ids = list(prompt_ids)
    if not ids:
        raise InputError("the prompt is empty", "give some text to continue")
    if len(ids) < context_length:
        return ids
    if params.context_policy == "error":
        raise ContextOverflow(f"the prompt has {len(ids)} tokens but the context holds {context_length}",
                              "shorten the prompt or use --context-policy truncate")
    # Leave room for the answer: max_new_tokens, but never more than half the window (and at least 1).
    keep = context_length - max(1, min(params.max_new_tokens, context_length // 2))
    if keep < 1:
        raise ContextOverflow(f"the context window ({context_length}) is too small to generate anything",
                              "use a model with a larger context")
    return ids[-keep:]


class PromptCache:
    """A prompt prefix fed once (a system prompt, a function list): generations whose prompt starts with
    it copy its KV cache and feed only the rest."""

    def __init__(self, model: LanguageModel, ids: Sequence[int]) -> None:
        self.ids = list(ids)
        self.cache = model.new_cache(len(self.ids) + 256)
        self.logits = model.forward(self.ids, self.cache)

    def start(self, model: LanguageModel, prompt_ids: list[int]) -> tuple[KVCache, np.ndarray] | None:
        """(cache, logits) for `prompt_ids`, or None when the prompt does not start with this prefix."""
        n = len(self.ids)
        if len(prompt_ids) < n or prompt_ids[:n] != self.ids:
            return None
        cache = self.cache.copy()
        rest = prompt_ids[n:]
        return cache, (model.forward(rest, cache) if rest else self.logits.copy())


@dataclass
class Generation:
    """Iterate it for step events; `results` holds one `GenerationResult` per finished sequence."""

    model: LanguageModel
    prompt_ids: list[int]
    params: SamplingParams
    constraint: Constraint | None = None
    alternatives: int = 5
    prompt_cache: PromptCache | None = None
    results: list[GenerationResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.prompt_ids = fit_prompt(self.prompt_ids, self.params, self.model.context_length)
        if self.constraint is not None and self.params.n > 1:
            raise InputError("a constraint decodes one sequence", "use n=1 with a grammar")
        self.seed = self.params.seed if self.params.seed is not None else secrets.randbits(63)
        self._stop_ids = frozenset() if self.params.ignore_eos else self.model.tokenizer.stop_ids

    def __iter__(self) -> Iterator[StepEvent]:
        capacity = min(len(self.prompt_ids) + self.params.max_new_tokens, self.model.context_length)
        start = time.perf_counter()
        reused = self.prompt_cache.start(self.model, self.prompt_ids) if self.prompt_cache is not None else None
        if reused is not None:
            cache, logits = reused
        else:
            cache = self.model.new_cache(capacity)
            logits = self.model.forward(self.prompt_ids, cache)
        prefill_ms = (time.perf_counter() - start) * 1000
        for index in range(self.params.n):
            last = index == self.params.n - 1
            # The prompt's cache and logits are shared; each sequence but the last gets its own copy.
            yield from self._sequence(index, cache if last else cache.copy(), logits.copy(), prefill_ms)

    def _sequence(self, index: int, cache: KVCache, logits: np.ndarray, prefill_ms: float) -> Iterator[StepEvent]:
        params, model = self.params, self.model
        rng = np.random.default_rng([self.seed, index])
        penalties = P.penalty_processors(params, len(self.prompt_ids))
        scale, truncate = P.sampling_processors(params)
        detok = IncrementalDetokenizer(model.tokenizer, self.prompt_ids)
        stops = StopMatcher(params.stop)
        context = np.empty(min(len(self.prompt_ids) + params.max_new_tokens, model.context_length), np.int64)
        context[: len(self.prompt_ids)] = self.prompt_ids
        length = len(self.prompt_ids)
        generated: list[int] = []
        text: list[str] = []
        finish: FinishReason = "length"
        stop_string_hit = False
        decode_start = tick = time.perf_counter()
        while True:
            forced = self.constraint.forced() if self.constraint is not None else []
            if forced:
                choices: list[tuple[int, float, tuple[tuple[int, float], ...]]] = [(token, 1.0, ()) for token in forced]
            else:
                choices = [self._choose(context[:length], logits, rng, penalties, scale, truncate)]
            stopped = False
            for token, prob, alternatives in choices:
                if self.constraint is not None:
                    self.constraint.advance(token)
                generated.append(token)
                context[length] = token
                length += 1
                now = time.perf_counter()
                if token in self._stop_ids:
                    finish, stopped, delta = "eos", True, ""
                else:
                    delta, stopped = stops.push(detok.push(token))
                    finish = "stop" if stopped else finish
                    stop_string_hit = stopped
                text.append(delta)
                yield StepEvent(index, len(generated) - 1, token, delta, prob, alternatives,
                                (now - tick) * 1000, forced=bool(forced))
                tick = now
                if stopped:
                    break
                if self.constraint is not None and self.constraint.is_finished():
                    finish, stopped = "stop", True
                    break
                if len(generated) >= params.max_new_tokens or length >= context.size:
                    stopped = True
                    break
            if stopped:
                break
            logits = model.forward(generated[-len(choices):], cache)
        # Held-back text is flushed unless a stop string cut it (a finished constraint also ends in "stop").
        if not stop_string_hit:
            tail = stops.push(detok.flush())[0] + stops.flush()
            if tail:
                text.append(tail)
                yield StepEvent(index, len(generated) - 1, generated[-1], tail, 1.0, (), 0.0)
        decode_ms = (tick - decode_start) * 1000 if len(generated) > 1 else 0.0
        self.results.append(GenerationResult(index, "".join(text), generated, finish, len(self.prompt_ids),
                                             prefill_ms, decode_ms, self.seed))

    def _choose(self, ids: np.ndarray, logits: np.ndarray, rng: np.random.Generator,
                penalties: list[P.LogitsProcessor], scale: list[P.LogitsProcessor],
                truncate: list[P.LogitsProcessor]) -> tuple[int, float, tuple[tuple[int, float], ...]]:
        logits = P.apply(penalties, ids, logits.astype(np.float32, copy=True))
        if self.constraint is not None:
            mask = self.constraint.allowed(ids)
            if mask is not None:
                logits[~mask[: logits.size]] = P.NEG_INF
        logits = P.apply(scale, ids, logits)
        probs = P.softmax(logits)
        alternatives = _top(probs, self.alternatives)
        if not truncate and self.params.is_greedy:
            token = int(np.argmax(logits))
        else:
            final = P.softmax(P.apply(truncate, ids, logits)) if truncate else probs
            if self.params.is_greedy:
                token = int(np.argmax(final))
            else:
                cumulative = np.cumsum(final)
                token = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
                token = min(token, final.size - 1)
        return token, float(probs[token]), alternatives


def _top(probs: np.ndarray, k: int) -> tuple[tuple[int, float], ...]:
    k = min(k, probs.size)
    if k <= 0:
        return ()
    top = np.argpartition(probs, probs.size - k)[probs.size - k:]
    top = top[np.argsort(-probs[top], kind="stable")]
    return tuple((int(i), float(probs[i])) for i in top)


def generate(model: LanguageModel, prompt_ids: Sequence[int], params: SamplingParams,
             constraint: Constraint | None = None, alternatives: int = 5,
             prompt_cache: PromptCache | None = None) -> Generation:
    return Generation(model, list(prompt_ids), params, constraint, alternatives, prompt_cache)


def complete(model: LanguageModel, prompt_ids: Sequence[int], params: SamplingParams,
             constraint: Constraint | None = None) -> list[GenerationResult]:
    """Run to the end and return the results, one per sequence."""
    generation = generate(model, prompt_ids, params, constraint, alternatives=0)
    for _ in generation:
        pass
    return generation.results
