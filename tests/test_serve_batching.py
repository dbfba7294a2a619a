"""Continuous batching: concurrent requests decode in shared forward passes and get exactly the engine's answers."""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest

from llm_playground.generate import Generation, SamplingParams
from llm_playground.generate.prompt import render
from llm_playground.serve import BackgroundServer, create_app

pytestmark = pytest.mark.slow


def test_forward_batch_matches_one_sequence_at_a_time(smollm2):
    prompts = [smollm2.tokenizer.encode(text) for text in ("The capital of France is", "Once upon a time there",
                                                             "1, 2, 3,")]
    alone, together = [smollm2.new_cache(32) for _ in prompts], [smollm2.new_cache(32) for _ in prompts]
    for ids, a, b in zip(prompts, alone, together, strict=True):
        smollm2.forward(ids, a)
        smollm2.forward(ids, b)
    tokens = [7042, 11, 28]
    expected = np.stack([smollm2.forward([t], cache) for t, cache in zip(tokens, alone, strict=True)])
    batched = smollm2.forward_batch(tokens, together)
    assert batched.shape == expected.shape and np.allclose(batched, expected, atol=1e-3)
    assert [c.length for c in together] == [c.length for c in alone]


def test_concurrent_streams_are_batched_and_each_gets_its_own_answer(smollm2):
    requests = [{"model": "smollm2", "messages": [{"role": "user", "content": f"Tell me about the number {i}."}],
                 "seed": i, "temperature": 0.8, "max_tokens": 12 + i} for i in range(4)]
    expected = []
    for body in requests:
        params = SamplingParams.create(max_new_tokens=body["max_tokens"], temperature=0.8, seed=body["seed"])
        generation = Generation(smollm2, smollm2.tokenizer.encode(render(smollm2.tokenizer, body["messages"])),
                                params)
        for _ in generation:
            pass
        expected.append(generation.results[0].text)
    app = create_app({"smollm2": smollm2}, max_batch=4)
    answers: dict[int, str] = {}
    with BackgroundServer(app) as server:
        def ask(i: int) -> None:
            reply = httpx.post(f"{server.url}/v1/chat/completions", json=requests[i], timeout=120)
            answers[i] = reply.json()["choices"][0]["message"]["content"]

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    batcher = app.state.llmp.workers["smollm2"].batching
    assert [answers[i] for i in range(4)] == expected
    # 4 requests of 12–15 tokens: decoded one at a time that is ~50 steps; batched, far fewer.
    assert batcher.batched_tokens > batcher.steps * 2


def test_tool_calls_under_batching_decode_with_the_adapter_outside_the_batches(smollm2):
    """The batcher hid the Llama model from the adapter lookup: tool calls ran without the adapter."""
    from llm_playground.functions.adapter import model_for_calls
    from llm_playground.serve.batching import BatchingModel

    batcher = BatchingModel(smollm2)
    adapted = model_for_calls(batcher)
    assert adapted.model is model_for_calls(smollm2) and adapted.info.name.endswith("+smollm2-calls")
    assert model_for_calls(batcher) is adapted and model_for_calls(batcher, "none") is batcher
    assert adapted._guard == batcher.working_elsewhere  # its passes count as work outside the batches
    assert adapted.forward(smollm2.tokenizer.encode("Hello"), adapted.new_cache()).shape == (smollm2.info.vocab_size,)
    assert batcher._elsewhere == 0
