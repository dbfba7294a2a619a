"""Optional model capabilities: declared protocols (model/base.py), forwarded exactly by the wrappers
(model/guarded.py, serve/batching.py), and the one log-softmax of scoring and perplexity."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest
import torch

from llm_playground.generate.score import continuation_logprobs, log_softmax, token_logprobs
from llm_playground.model.base import (
    Embeddable,
    Introspectable,
    LanguageModel,
    Scorable,
    Wrapper,
    capabilities,
    unwrapped,
)
from llm_playground.model.gpt import GPT, GPTConfig
from llm_playground.model.gpt_model import GPTModel
from llm_playground.model.guarded import GuardedModel
from llm_playground.serve.batching import BatchingModel
from llm_playground.ui.shared import SharedModel

ALL = {"forward_full", "forward_all", "forward_batch", "embedding_matrix"}


class CountingGuard:
    """A guard that records how many passes ran inside it."""

    def __init__(self) -> None:
        self.entered = 0

    @contextlib.contextmanager
    def __call__(self):
        self.entered += 1
        yield


@pytest.fixture(scope="module")
def tiny_gpt(smollm2_tokenizer) -> GPTModel:
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=smollm2_tokenizer.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16,
                       positions="rotary")
    return GPTModel(GPT(config).eval(), smollm2_tokenizer, name="tiny")


def test_backends_declare_their_capabilities(smollm2, tiny_gpt):
    assert capabilities(smollm2) == ALL
    assert capabilities(tiny_gpt) == {"forward_full", "embedding_matrix"}
    assert not isinstance(smollm2, Wrapper) and unwrapped(smollm2) is smollm2


def test_wrappers_forward_exactly_the_wrapped_models_capabilities(smollm2, tiny_gpt):
    for model in (smollm2, tiny_gpt):
        for wrapper in (GuardedModel(model, CountingGuard()), SharedModel(model)):
            assert isinstance(wrapper, LanguageModel) and isinstance(wrapper, Wrapper)
            assert capabilities(wrapper) == capabilities(model) and unwrapped(wrapper) is model
            assert wrapper.info == model.info and wrapper.tokenizer is model.tokenizer
    shared_gpt = SharedModel(tiny_gpt)
    assert not isinstance(shared_gpt, Scorable) and not hasattr(shared_gpt, "forward_batch")
    assert not hasattr(shared_gpt, "net")  # no proxying of the backend's other attributes
    assert isinstance(shared_gpt, SharedModel) and isinstance(shared_gpt, Introspectable)
    # A wrapper of a wrapper still has exactly the backend's capabilities, and unwraps to it.
    double = GuardedModel(SharedModel(smollm2), CountingGuard())
    assert capabilities(double) == ALL and unwrapped(double) is smollm2


def test_passes_run_inside_the_guard_and_give_the_models_numbers(smollm2):
    guard = CountingGuard()
    guarded = GuardedModel(smollm2, guard)
    ids = smollm2.tokenizer.encode("The quick brown fox")
    direct = smollm2.forward_all(ids, smollm2.new_cache())
    assert np.array_equal(guarded.forward_all(ids, guarded.new_cache()), direct)
    assert np.array_equal(guarded.forward(ids, guarded.new_cache()), smollm2.forward(ids, smollm2.new_cache()))
    assert guard.entered == 2
    matrix = guarded.embedding_matrix()  # reads weights, runs no pass: no guard needed
    assert guard.entered == 2 and matrix.shape == (smollm2.info.vocab_size, matrix.shape[1])
    assert isinstance(guarded, Embeddable)


def test_siblings_share_the_guard_and_keep_their_own_capabilities(smollm2, tiny_gpt):
    guard = CountingGuard()
    guarded = GuardedModel(smollm2, guard)
    twin = guarded.sibling(tiny_gpt)
    assert guarded.sibling(smollm2) is guarded and guarded.sibling(tiny_gpt) is twin
    assert twin.model is tiny_gpt and capabilities(twin) == capabilities(tiny_gpt)
    twin.forward([1, 2, 3], twin.new_cache())
    assert guard.entered == 1


def test_the_batcher_has_the_models_capabilities_outside_its_batches(smollm2):
    batcher = BatchingModel(smollm2, max_batch=2)
    assert capabilities(batcher) == ALL and isinstance(batcher, Wrapper) and unwrapped(batcher) is smollm2
    ids = smollm2.tokenizer.encode("Hello there")
    seen: list[int] = []
    original = batcher.working_elsewhere

    @contextlib.contextmanager
    def recording():
        seen.append(threading.get_ident())
        with original():
            yield

    batcher._outside._guard = recording  # scoring counts as work outside the batches
    rows = batcher.forward_all(ids, batcher.new_cache())
    assert seen and np.array_equal(rows, smollm2.forward_all(ids, smollm2.new_cache()))


def test_token_logprobs_is_log_softmax_at_the_targets():
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((5, 11)) * 30).astype(np.float32)
    targets = [0, 3, 10, 7, 7]
    expected = torch.log_softmax(torch.from_numpy(logits).double(), dim=-1).numpy()
    np.testing.assert_allclose(log_softmax(logits), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(token_logprobs(logits, targets), expected[np.arange(5), targets], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="one row per target"):
        token_logprobs(logits, targets[:2])


def test_scoring_is_the_same_with_and_without_forward_all(smollm2, tiny_gpt):
    """The Scorable path (one pass over each continuation) and the token-by-token one agree."""

    class OneTokenAtATime(GuardedModel):  # the same backend, seen without its forward_all
        def __new__(cls, model, guard):
            return object.__new__(cls)

    tokenizer = smollm2.tokenizer
    prompt = tokenizer.encode("The capital of France is")
    continuations = [tokenizer.encode(" Paris, of course."), tokenizer.encode(" Lyon, I think.")]
    plain = OneTokenAtATime(smollm2, contextlib.nullcontext)
    assert not isinstance(plain, Scorable)
    scored, stepped = continuation_logprobs(smollm2, prompt, continuations), continuation_logprobs(
        plain, prompt, continuations)
    np.testing.assert_allclose(scored, stepped, rtol=1e-4)
    assert scored[0] > scored[1]
