"""LoRA adapters for function calls: the merge is exact, the bundled adapter fixes argument values, training
lowers the loss and writes an adapter that loads, and a mismatched base model is a one-line error."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch

from llm_playground.errors import ModelLoadError
from llm_playground.functions import call_functions, load_functions
from llm_playground.functions.adapter import bundled_adapter_dir, model_for_calls
from llm_playground.functions.tuning.dataset import _leaks, answer_text, generate_examples
from llm_playground.functions.tuning.train import TuneConfig, tune_calls
from llm_playground.model.lora import AdapterMeta, attach, clone_net, load_adapter, merged_model

pytestmark = pytest.mark.slow

REGEX = {"name": "fn_substitute_string_with_regex", "description": "Replace all occurrences matching a regex "
         "pattern in a string.", "parameters": {"source_string": {"type": "string"}, "regex": {"type": "string"},
                                                "replacement": {"type": "string"}}, "returns": {"type": "string"}}


def test_merged_weights_give_the_logits_of_the_unmerged_lora(smollm2):
    generator = torch.Generator().manual_seed(0)
    meta = AdapterMeta(rank=4, alpha=8.0, targets=["qkv", "o", "gate_up", "down"], base={})
    unmerged = clone_net(smollm2.net)
    params = attach(unmerged, meta.rank, meta.alpha, meta.targets, seed=0)
    with torch.no_grad():
        for p in params[1::2]:  # B starts at zero: give it values, or the test proves nothing
            p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
    tensors = {f"blocks.{i}.{name}.{part}": getattr(getattr(block, name), part).detach()
               for i, block in enumerate(unmerged.blocks) for name in meta.targets for part in ("lora_a", "lora_b")}
    merged = merged_model(smollm2, tensors, meta, "test")
    ids = smollm2.tokenizer.encode("Replace all digits in 'a1b22' with X")
    with torch.no_grad():
        expected = unmerged.lm_head(unmerged.forward_hidden(torch.tensor([ids])))[0].numpy()
    got = merged.forward_full(ids, attentions=False, hidden_states=False).logits
    plain = smollm2.forward_full(ids, attentions=False, hidden_states=False).logits
    assert abs(got - expected).max() < 2e-3
    assert abs(plain - expected).max() > 0.1  # the adapter does change the logits
    # Only the targeted matrices are new; the embeddings/LM head and the norms are the base model's.
    assert merged.net.lm_head.weight.data_ptr() == smollm2.net.lm_head.weight.data_ptr()
    assert merged.net.blocks[0].input_norm.data_ptr() == smollm2.net.blocks[0].input_norm.data_ptr()
    assert merged.net.blocks[0].qkv.weight.data_ptr() != smollm2.net.blocks[0].qkv.weight.data_ptr()
    assert merged.net.blocks[0].qkv.weight.stride() == smollm2.net.blocks[0].qkv.weight.stride()  # _gemv_layout


def test_bundled_adapter_writes_the_regex_idiom_of_a_request_not_trained_on(smollm2):
    [spec] = load_functions([REGEX])
    request = "Within \"order 77 came on day 5\", substitute the numbers by X"  # a held-out phrasing
    adapted = call_functions(smollm2, [{"role": "user", "content": request}], [spec])
    assert adapted.calls[0].arguments == {"source_string": "order 77 came on day 5", "regex": r"\d+",
                                          "replacement": "X"}
    plain = call_functions(smollm2, [{"role": "user", "content": request}], [spec], adapter="none")
    assert plain.calls[0].arguments["regex"] != r"\d+"
    assert model_for_calls(smollm2) is model_for_calls(smollm2)  # merged once per base model


def test_generated_data_is_deterministic_and_keeps_the_public_prompts_out():
    first, again = generate_examples(200, seed=3), generate_examples(200, seed=3)
    assert [e.request for e in first] == [e.request for e in again]
    public = ["Programming is fun", "Hello 34", "The cat sat", "shrek", "john", "265", "345"]
    assert not any(p.lower() in e.request.lower() for e in first for p in public)
    assert not any(_leaks(e) for e in first)
    heldout = generate_examples(50, seed=3, heldout=True)
    assert not {e.request for e in heldout} & {e.request for e in first}
    assert all(json.loads(answer_text(e))["parameters"] == e.arguments for e in first[:20])


def test_a_few_training_steps_lower_the_loss_and_write_an_adapter_that_loads(tmp_path, smollm2):
    out = tmp_path / "adapter"
    result = tune_calls(out, TuneConfig(steps=4, batch_size=2, examples=2, heldout_examples=2, rank=2, alpha=4.0,
                                        learning_rate=5e-3, warmup=0, threads=1), show_progress=False)
    assert result.final_loss < result.first_loss
    tensors, meta = load_adapter(out)
    assert meta.rank == 2 and meta.training["steps"] == 4 and meta.base["name"] == "smollm2"
    assert (out / "adapter.safetensors").stat().st_size < 5_000_000
    adapted = model_for_calls(smollm2, out)  # trained on bfloat16 weights, applied to float32 ones
    assert adapted is not smollm2 and adapted.net.blocks[0].qkv.weight is not smollm2.net.blocks[0].qkv.weight


def test_an_adapter_for_another_base_model_is_a_clear_error(tmp_path, smollm2):
    other = tmp_path / "other"
    shutil.copytree(bundled_adapter_dir(), other)
    meta = json.loads((other / "adapter.json").read_text())
    meta["base"]["fingerprint"] = [x * 1.5 for x in meta["base"]["fingerprint"]]
    meta["base"]["name"] = "some-other-135m"
    (other / "adapter.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="was trained on 'some-other-135m'") as caught:
        model_for_calls(smollm2, other)
    assert "--adapter none" in caught.value.fix
    tensors, parsed = load_adapter(bundled_adapter_dir())
    assert parsed.base["parameters"] == smollm2.info.parameters


def test_the_default_adapter_is_only_for_the_bundled_model(smollm2):
    other = copy.copy(smollm2)  # same shape, other weights: as a fine-tune of the same architecture would be
    other.net = clone_net(smollm2.net, {"norm": smollm2.net.norm.detach() * 1.1})
    assert model_for_calls(other) is other
    assert model_for_calls(other, "none") is other
    assert model_for_calls(smollm2, "none") is smollm2
    assert model_for_calls(smollm2) is not smollm2
