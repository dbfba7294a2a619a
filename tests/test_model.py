"""The real bundled model: backends agree, the KV cache is exact, greedy decoding knows Paris."""

from __future__ import annotations

import numpy as np
import pytest

from llm_playground.errors import ModelLoadError, ModelNotFound
from llm_playground.generate import SamplingParams, complete
from llm_playground.generate.prompt import build_prompt
from llm_playground.model import get_logits_from_input_ids, load_model

pytestmark = pytest.mark.slow

QUESTION = "What is the capital of France?"


def test_native_logits_match_transformers(smollm2, smollm2_dir):
    from llm_playground.model.hf import HFModel

    reference = HFModel(smollm2_dir)
    ids = smollm2.tokenizer.encode(build_prompt(smollm2.tokenizer, QUESTION))
    ours, theirs = smollm2.new_cache(), reference.new_cache()
    np.testing.assert_allclose(smollm2.forward(ids, ours), reference.forward(ids, theirs), atol=2e-3)
    for token in (504, 3575, 282):
        np.testing.assert_allclose(smollm2.forward([token], ours), reference.forward([token], theirs), atol=2e-3)


def test_kv_cache_logits_equal_full_recompute(smollm2):
    ids = smollm2.tokenizer.encode("The quick brown fox jumps over the lazy dog because")
    cache = smollm2.new_cache(4)  # smaller than needed: the cache has to grow on the way
    smollm2.forward(ids[:3], cache)
    for end in range(4, len(ids) + 1):
        stepped = smollm2.forward(ids[end - 1:end], cache)
        full = np.asarray(get_logits_from_input_ids(smollm2, ids[:end]), dtype=np.float32)
        np.testing.assert_allclose(stepped, full, atol=1e-3)


def test_chunked_prefill_equals_single_prefill(smollm2):
    ids = smollm2.tokenizer.encode("Once upon a time, in a land far away, there lived a")
    whole = smollm2.forward(ids, smollm2.new_cache())
    cache = smollm2.new_cache()
    smollm2.forward(ids[:5], cache)
    np.testing.assert_allclose(smollm2.forward(ids[5:], cache), whole, atol=1e-3)


def test_cache_copy_is_independent(smollm2):
    ids = smollm2.tokenizer.encode("Roses are red,")
    cache = smollm2.new_cache()
    smollm2.forward(ids, cache)
    twin = cache.copy()
    first = smollm2.forward([11], cache)
    assert twin.length == len(ids)
    np.testing.assert_allclose(smollm2.forward([11], twin), first, atol=1e-5)


def test_greedy_answer_contains_paris(smollm2):
    prompt = smollm2.tokenizer.encode(build_prompt(smollm2.tokenizer, "The capital of France is", raw=True))
    [result] = complete(smollm2, prompt, SamplingParams.create(greedy=True, max_new_tokens=12))
    assert "Paris" in result.text
    chat = smollm2.tokenizer.encode(build_prompt(smollm2.tokenizer, QUESTION))
    [answer] = complete(smollm2, chat, SamplingParams.create(greedy=True, max_new_tokens=20))
    assert "Paris" in answer.text and answer.finish_reason == "eos"


def test_same_seed_same_output_on_the_real_model(smollm2):
    prompt = smollm2.tokenizer.encode("Once upon a time")
    params = SamplingParams.create(temperature=1.0, top_p=0.95, seed=7, max_new_tokens=24, n=2)
    first, second = complete(smollm2, prompt, params), complete(smollm2, prompt, params)
    assert [r.token_ids for r in first] == [r.token_ids for r in second]
    assert first[0].token_ids != first[1].token_ids  # the n samples are independent


def test_chat_template_is_applied_unless_raw(smollm2_tokenizer):
    chat = build_prompt(smollm2_tokenizer, "hi", system="Be brief.")
    assert chat.startswith("<|im_start|>system\nBe brief.<|im_end|>") and chat.endswith("<|im_start|>assistant\n")
    assert build_prompt(smollm2_tokenizer, "hi", raw=True) == "hi"


def test_bfloat16_weights_still_know_paris():
    model = load_model("smollm2", dtype="bfloat16", threads=1)
    prompt = model.tokenizer.encode("The capital of France is")
    [result] = complete(model, prompt, SamplingParams.create(greedy=True, max_new_tokens=8))
    assert "Paris" in result.text


def test_registry_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMP_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ModelNotFound, match="unknown model"):
        load_model("no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="neither"):
        load_model(str(tmp_path / "empty"))
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelLoadError, match="is not a valid GGUF file"):
        load_model(str(bogus))
    assert not any((tmp_path / "cache").rglob("config.json"))  # nothing half-converted left behind


def test_forward_full_attention_and_hidden_states_match_transformers(smollm2, smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM

    ids = smollm2.tokenizer.encode("The cat sat on the mat because it was tired")
    full = smollm2.forward_full(ids)
    layers, heads = 30, 9
    assert full.attentions.shape == (layers, heads, len(ids), len(ids))
    assert full.hidden_states.shape == (layers + 1, len(ids), 576)
    np.testing.assert_allclose(full.attentions.sum(-1), 1.0, atol=1e-5)
    assert np.abs(np.triu(full.attentions, 1)).max() == 0.0
    np.testing.assert_allclose(full.logits[-1], smollm2.forward(ids, smollm2.new_cache()), atol=1e-3)
    reference = AutoModelForCausalLM.from_pretrained(smollm2_dir, attn_implementation="eager")
    with torch.no_grad():
        out = reference(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    np.testing.assert_allclose(full.attentions, torch.stack(out.attentions)[:, 0].numpy(), atol=1e-4)
    np.testing.assert_allclose(full.hidden_states, torch.stack(out.hidden_states)[:, 0].numpy(), atol=2e-3)


def test_transformers_backend_shows_attention_like_the_native_one(smollm2):
    reference = load_model("smollm2", backend="transformers", threads=1)
    ids = smollm2.tokenizer.encode("Attention is all you need")
    theirs, ours = reference.forward_full(ids), smollm2.forward_full(ids)
    np.testing.assert_allclose(theirs.attentions, ours.attentions, atol=1e-4)
    np.testing.assert_allclose(theirs.hidden_states, ours.hidden_states, atol=2e-3)
    # the generation path still works after the eager detour
    np.testing.assert_allclose(reference.forward(ids, reference.new_cache()), theirs.logits[-1], atol=1e-3)


def test_prompt_cache_gives_the_same_tokens_and_logits(smollm2):
    from llm_playground.generate.loop import PromptCache, generate

    system = smollm2.tokenizer.encode("<|im_start|>system\nYou are a poet.<|im_end|>\n")
    prompt = system + smollm2.tokenizer.encode("<|im_start|>user\nA line about rain<|im_end|>\n<|im_start|>assistant\n")
    params = SamplingParams.create(temperature=0.8, seed=5, max_new_tokens=12)
    cache = PromptCache(smollm2, system)
    plain = complete(smollm2, prompt, params)[0]
    for _ in range(2):  # the prefix is reused, not consumed
        cached = generate(smollm2, prompt, params, prompt_cache=cache)
        list(cached)
        assert cached.results[0].token_ids == plain.token_ids
    # A prompt without the prefix falls back to a full prefill: the same tokens as without any cache.
    unrelated = smollm2.tokenizer.encode("Unrelated start")
    other = generate(smollm2, unrelated, params, prompt_cache=cache)
    list(other)
    assert other.results[0].token_ids == complete(smollm2, unrelated, params)[0].token_ids
    assert other.results[0].completion_tokens >= 1


def test_forward_all_matches_step_by_step(smollm2):
    ids = smollm2.tokenizer.encode("The quick brown fox")
    cache = smollm2.new_cache(16)
    rows = smollm2.forward_all(ids, cache)
    step = smollm2.new_cache(16)
    for i, token in enumerate(ids):
        assert np.allclose(rows[i], smollm2.forward([token], step), atol=1e-3)
