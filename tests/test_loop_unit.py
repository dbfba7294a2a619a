"""The generation loop over a tiny, real `LanguageModel`: a seeded bigram table over a character tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from llm_playground.errors import ContextOverflow, InputError
from llm_playground.generate import GenerationResult, SamplingParams, StepEvent, complete, generate
from llm_playground.generate.constraint import Constraint
from llm_playground.model.base import KVCache, LanguageModel, ModelInfo
from llm_playground.tokenizer.base import Message, Tokenizer

CHARS = "abcdefghijklmnopqrstuvwxyz .,!?'-\n012345"
EOS = len(CHARS)


class CharTokenizer:
    """One id per character, plus an end-of-sequence id that decodes to nothing."""

    vocab_size = len(CHARS) + 1
    bos_id = None
    eos_id = EOS
    stop_ids = frozenset({EOS})

    def encode(self, text: str) -> list[int]:
        return [CHARS.index(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(CHARS[i] for i in ids if i != EOS)

    def token_text(self, token_id: int) -> str:
        return "<eos>" if token_id == EOS else CHARS[token_id]

    def apply_chat_template(self, messages: Sequence[Message]) -> str | None:
        return None


@dataclass
class TokenCache:
    tokens: list[int] = field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.tokens)

    def copy(self) -> TokenCache:
        return TokenCache(list(self.tokens))


class BigramModel:
    """Logits of the next token: a bigram row of the last token plus a small term from the one before it.

    The second term makes the output depend on what the cache holds, so a cache shared by mistake shows.
    """

    def __init__(self, seed: int = 0, context_length: int = 64, eos_logit: float = -30.0) -> None:
        rng = np.random.default_rng(seed)
        size = CharTokenizer.vocab_size
        self.table = rng.normal(0.0, 2.0, (size, size)).astype(np.float32)
        self.skip = rng.normal(0.0, 0.5, (size, size)).astype(np.float32)
        self.table[:, EOS] = eos_logit
        self.tokenizer: Tokenizer = CharTokenizer()
        self._context_length = context_length
        self.info = ModelInfo("bigram", "test", "bigram", 2 * size**2, context_length, size, "float32", "-")
        self.calls: list[list[int]] = []

    @property
    def context_length(self) -> int:
        return self._context_length

    def new_cache(self, capacity: int | None = None) -> KVCache:
        return TokenCache()

    def forward(self, ids: Sequence[int], cache: KVCache) -> np.ndarray:
        assert isinstance(cache, TokenCache) and ids
        cache.tokens.extend(int(i) for i in ids)
        assert cache.length <= self.context_length, "the loop overflowed the context window"
        self.calls.append(list(ids))
        logits = self.table[cache.tokens[-1]].copy()
        if cache.length > 1:
            logits += self.skip[cache.tokens[-2]]
        return logits


def encode(text: str) -> list[int]:
    return CharTokenizer().encode(text)


def greedy_reference(model: BigramModel, prompt: list[int], steps: int) -> list[int]:
    """Argmax of a full recompute at every step: what greedy decoding must produce."""
    ids = list(prompt)
    for _ in range(steps):
        ids.append(int(np.argmax(model.forward(ids, model.new_cache()))))
    return ids[len(prompt):]


def run(model: BigramModel, prompt: str | list[int], constraint: Constraint | None = None,
        **params: object) -> tuple[list[GenerationResult], list[StepEvent]]:
    prompt_ids = encode(prompt) if isinstance(prompt, str) else prompt
    generation = generate(model, prompt_ids, SamplingParams.create(**params), constraint)
    events = list(generation)
    return generation.results, events


def test_greedy_picks_the_argmax_each_step() -> None:
    model = BigramModel()
    assert isinstance(model, LanguageModel) and isinstance(model.tokenizer, Tokenizer)
    [result], _ = run(model, "hello", greedy=True, max_new_tokens=20)
    expected = greedy_reference(BigramModel(), encode("hello"), 20)
    assert result.token_ids == expected
    assert result.text == model.tokenizer.decode(expected)
    assert (result.finish_reason, result.prompt_tokens, result.completion_tokens) == ("length", 5, 20)


def test_events_report_probabilities_and_alternatives() -> None:
    _, events = run(BigramModel(), "hi", temperature=1.0, seed=1, max_new_tokens=5)
    for event in events:
        assert 0.0 < event.prob <= 1.0 and not event.forced
        probs = [p for _, p in event.top_alternatives]
        assert len(probs) == 5 and probs == sorted(probs, reverse=True)
        assert event.prob <= probs[0]


def test_eos_ends_the_generation_and_is_not_text() -> None:
    model = BigramModel()
    a = encode("a")[0]
    model.table[encode("o")[0], a] = 50.0  # after "o" comes "a", after "a" comes EOS
    model.table[a, EOS] = 50.0
    [result], _ = run(model, "go", greedy=True, max_new_tokens=10)
    assert (result.token_ids, result.text, result.finish_reason) == ([a, EOS], "a", "eos")
    [ignored], _ = run(model, "go", greedy=True, max_new_tokens=4, ignore_eos=True)
    assert ignored.finish_reason == "length" and ignored.token_ids[:2] == [a, EOS]


def test_stop_string_ends_the_generation_and_is_not_in_the_text() -> None:
    [full], _ = run(BigramModel(), "abc", greedy=True, max_new_tokens=30)
    stop = full.text[6:8]
    [result], events = run(BigramModel(), "abc", greedy=True, max_new_tokens=30, stop=[stop, "never!"])
    assert result.finish_reason == "stop"
    assert result.text == full.text[: full.text.find(stop)]
    assert stop not in "".join(e.text for e in events)


@pytest.mark.parametrize("truncation", [{"top_k": 1}, {"min_p": 1.0}, {"top_p": 1e-6}])
def test_truncation_to_the_top_token_samples_like_greedy(truncation: dict) -> None:
    [sampled], _ = run(BigramModel(), "hello", temperature=2.0, seed=4, max_new_tokens=20, **truncation)
    assert sampled.token_ids == greedy_reference(BigramModel(), encode("hello"), 20)


def test_same_seed_same_output_different_seed_different_output() -> None:
    params = {"temperature": 1.0, "max_new_tokens": 40}
    [a], _ = run(BigramModel(), "the", seed=7, **params)
    [b], _ = run(BigramModel(), "the", seed=7, **params)
    [c], _ = run(BigramModel(), "the", seed=8, **params)
    assert a.token_ids == b.token_ids and a.seed == b.seed == 7
    assert a.token_ids != c.token_ids
    [drawn], _ = run(BigramModel(), "the", **params)  # without a seed, one is drawn and reported
    [again], _ = run(BigramModel(), "the", seed=drawn.seed, **params)
    assert drawn.token_ids == again.token_ids


def test_n_samples_are_independent_and_indexed() -> None:
    results, events = run(BigramModel(), "the", temperature=1.0, max_new_tokens=30, n=3, seed=5)
    assert [r.index for r in results] == [0, 1, 2]
    assert len({tuple(r.token_ids) for r in results}) == 3
    [single], _ = run(BigramModel(), "the", temperature=1.0, max_new_tokens=30, seed=5)
    assert results[0].token_ids == single.token_ids
    for result in results:
        assert "".join(e.text for e in events if e.index == result.index) == result.text


def test_n_greedy_samples_each_start_from_the_prompt_cache() -> None:
    """Greedy and the same prompt: identical sequences, which a cache shared between them would break."""
    results, _ = run(BigramModel(), "cache", greedy=True, max_new_tokens=15, n=3)
    assert [r.token_ids for r in results] == [greedy_reference(BigramModel(), encode("cache"), 15)] * 3


def test_prompt_filling_the_context_raises_under_error_policy() -> None:
    model = BigramModel(context_length=16)
    for length in (16, 40):
        with pytest.raises(ContextOverflow, match=f"{length} tokens"):
            run(model, [0] * length, max_new_tokens=4)


def test_prompt_too_long_is_left_truncated_under_truncate_policy() -> None:
    model = BigramModel(context_length=16)
    prompt = encode("abcdefghijklmnopqrstuvwxyz")
    [result], _ = run(model, prompt, greedy=True, max_new_tokens=4, context_policy="truncate")
    assert result.prompt_tokens == 12 and model.calls[0] == prompt[-12:]
    assert result.finish_reason == "length" and result.completion_tokens == 4


def test_generation_stops_at_the_context_length() -> None:
    model = BigramModel(context_length=16)
    [result], _ = run(model, "abcdefghijkl", greedy=True, max_new_tokens=100)
    assert (result.finish_reason, result.completion_tokens) == ("length", 4)


def test_empty_prompt_is_an_input_error() -> None:
    with pytest.raises(InputError, match="empty"):
        generate(BigramModel(), [], SamplingParams.create())


def test_complete_returns_the_results() -> None:
    params = SamplingParams.create(greedy=True, max_new_tokens=6, n=2)
    results = complete(BigramModel(), encode("done"), params)
    assert [r.index for r in results] == [0, 1]
    assert all(r.completion_tokens == 6 and r.to_dict()["completion_tokens"] == 6 for r in results)


class SubsetConstraint:
    """Allows only `allowed` characters; forces `force` once after `after` tokens; finishes after `length`."""

    def __init__(self, allowed: str, force: str = "", after: int = 2, length: int | None = None) -> None:
        self.mask = np.zeros(CharTokenizer.vocab_size, dtype=bool)
        self.mask[encode(allowed)] = True
        self.force, self.after, self.length = force, after, length
        self.seen: list[int] = []

    def allowed(self, ids: np.ndarray) -> np.ndarray | None:
        return self.mask

    def forced(self) -> list[int]:
        return encode(self.force) if self.force and len(self.seen) == self.after else []

    def advance(self, token_id: int) -> None:
        self.seen.append(token_id)

    def is_finished(self) -> bool:
        return self.length is not None and len(self.seen) >= self.length


@pytest.mark.parametrize("params", [{"greedy": True}, {"temperature": 1.5, "seed": 3}])
def test_constraint_mask_and_forced_tokens_are_respected(params: dict) -> None:
    model, constraint = BigramModel(), SubsetConstraint("aeiou", force="!?", after=3)
    [result], events = run(model, "say", constraint, max_new_tokens=12, **params)
    sampled = result.text[:3] + result.text[5:]
    assert len(sampled) == 10 and set(sampled) <= set("aeiou")
    assert result.text[3:5] == "!?" and constraint.seen == result.token_ids
    assert [e.forced for e in events] == [i in (3, 4) for i in range(12)]
    assert all(e.prob == 1.0 for e in events[3:5])
    # prefill, three sampled tokens, then the two forced tokens in one forward call
    assert model.calls[4] == encode("!?")


def test_constraint_finishing_ends_the_generation() -> None:
    [result], events = run(BigramModel(), "go", SubsetConstraint("xyz", length=5), max_new_tokens=50)
    assert (result.finish_reason, result.completion_tokens) == ("stop", 5)
    assert set(result.text) <= set("xyz") and "".join(e.text for e in events) == result.text


def test_constraint_finishing_releases_text_held_for_a_stop_string() -> None:
    """The stop string "ab" never came: the "a" held back in case it did belongs to the output."""
    [result], events = run(BigramModel(), "go", SubsetConstraint("a", length=3), stop="ab")
    assert result.text == "aaa" == "".join(e.text for e in events)


def test_constraint_with_several_samples_is_an_input_error() -> None:
    with pytest.raises(InputError, match="one sequence"):
        generate(BigramModel(), encode("go"), SamplingParams.create(n=2), SubsetConstraint("a"))
