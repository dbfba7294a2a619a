"""One model shared by every browser session: forward passes from two threads at once, each with its own cache."""

from __future__ import annotations

import threading

import pytest

from llm_playground.explore.common import introspectable
from llm_playground.generate import SamplingParams, complete
from llm_playground.model.base import Introspectable, LanguageModel
from llm_playground.ui.shared import SharedModel

pytestmark = pytest.mark.slow


def test_shared_model_is_the_model_behind_a_lock(smollm2):
    shared = SharedModel(smollm2)
    assert isinstance(shared, LanguageModel) and isinstance(shared, Introspectable)
    assert introspectable(shared) is shared
    assert shared.info == smollm2.info and shared.tokenizer is smollm2.tokenizer
    assert shared.context_length == smollm2.context_length
    assert not hasattr(shared, "no_such_attribute")


def test_two_threads_generate_what_each_would_alone(smollm2):
    """Two chats at once get the same tokens as one after the other (seeded sampling, separate caches)."""
    shared = SharedModel(smollm2)
    tokenizer = smollm2.tokenizer
    # Long enough prompts that both sequences grow past the first rotary table (256 positions).
    prompts = [tokenizer.encode("Tell me about the sea. " * 45), tokenizer.encode("Count the stars above us. " * 40)]
    params = SamplingParams(temperature=0.8, seed=3, max_new_tokens=8, ignore_eos=True)
    alone = [complete(smollm2, ids, params)[0].token_ids for ids in prompts]

    together: list[list[int] | None] = [None, None]
    errors: list[BaseException] = []

    def chat(index: int) -> None:
        try:
            together[index] = complete(shared, prompts[index], params)[0].token_ids
        except BaseException as exc:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=chat, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert together == alone


def test_function_calls_in_the_web_app_get_the_adapter_behind_the_same_lock(smollm2):
    from llm_playground.functions.adapter import model_for_calls

    shared = SharedModel(smollm2)
    adapted = model_for_calls(shared)
    assert isinstance(adapted, SharedModel) and adapted is not shared and adapted.lock is shared.lock
    assert adapted.model is model_for_calls(smollm2) and adapted.info.name.endswith("+smollm2-calls")
    assert model_for_calls(shared) is adapted  # made once: its prompt caches live as long as the page's model
    assert model_for_calls(shared, "none") is shared
