"""int8/int4 weights of the native backend: kernel numerics, quality against float32, the cached form."""

from __future__ import annotations

import importlib.resources
import json
import math

import numpy as np
import pytest
import torch

from llm_playground.data.sources import play_text, shakespeare_plays
from llm_playground.errors import InvalidParameter
from llm_playground.generate import SamplingParams, complete
from llm_playground.generate.prompt import build_prompt
from llm_playground.model import load_model
from llm_playground.model.quant import QuantLinear, kernels, quantize, quantized_path
from llm_playground.model.registry import parse_dtype

pytestmark = pytest.mark.slow

GREEDY_TOKENS = 24


@pytest.fixture(scope="module")
def int8():
    return load_model("smollm2", dtype="int8", threads=1)


@pytest.fixture(scope="module")
def int4():
    return load_model("smollm2", dtype="int4", threads=1)


def _quantize_activation(x: torch.Tensor, levels: int) -> torch.Tensor:
    """What the kernels do to the activations: integers per group of 32 (round half to even), back to float;
    int16 (levels 32767) for int8 weights, int8 (127) for int4 weights."""
    groups = x.reshape(*x.shape[:-1], -1, 32)
    scale = groups.abs().amax(dim=-1, keepdim=True) / levels
    return (torch.round(groups / torch.where(scale > 0, scale, 1)) * scale).reshape(x.shape)


@pytest.mark.parametrize("fmt, steps, levels, error", [("int8", 240, 32767, 1e-4), ("int4", 15, 127, 0.01)])
def test_kernels_match_float_within_stated_tolerances(fmt, steps, levels, error):
    torch.manual_seed(0)
    weight = torch.randn(200, 576) * 0.05
    matrix = quantize(weight, fmt)
    dequantized = matrix.dequantize()
    # Each weight is within half a quantization step of the original (step = group range / levels).
    groups = weight.reshape(200, -1, 32)
    step = (groups.amax(-1) - groups.amin(-1)) / steps
    worst = (dequantized - weight).abs().reshape(200, -1, 32).amax(-1)
    assert bool((worst <= step / 2 + 1e-6).all())
    x = torch.randn(5, 576)
    y = kernels().qlinear(x, *matrix.parts, None)
    # Against the same math in float64 (activations quantized the same way): only summation order differs.
    exact = (_quantize_activation(x, levels).double() @ dequantized.double().T).float()
    torch.testing.assert_close(y, exact, rtol=1e-4, atol=1e-4)
    # Against float32 itself: the activation rounding adds < 1e-4 (int16) or < 1 % (int8) relative error.
    reference = x @ dequantized.T
    assert float((y - reference).norm() / reference.norm()) < error
    # One row and a few rows give the same numbers.
    torch.testing.assert_close(kernels().qlinear(x[2:3], *matrix.parts, None), y[2:3])
    # Prompts (8 rows or more) run float32 GEMMs over dequantized tiles: float32 numerics, no activation rounding.
    prompt = torch.randn(12, 576)
    torch.testing.assert_close(kernels().qlinear(prompt, *matrix.parts, None), prompt @ dequantized.T,
                               rtol=1e-4, atol=1e-4)


def test_weights_from_q4_1_blocks_are_exact_in_both_formats():
    """Groups with 16 levels (dequantized Q4_1, the bundled GGUF's blocks) land on both grids exactly."""
    torch.manual_seed(1)
    levels = torch.randint(0, 16, (4, 64)).float()
    levels[:, [0, 32]], levels[:, [1, 33]] = 0, 15  # every group spans the full range, as Q4_1's do
    weights = levels * torch.rand(4, 64).abs().repeat_interleave(1, 1)[:, :1] * 0.01 - 0.03
    for fmt in ("int8", "int4"):
        torch.testing.assert_close(quantize(weights, fmt).dequantize(), weights, atol=1e-6, rtol=0)


def _perplexity(model, ids: list[int]) -> float:
    logits = torch.from_numpy(model.forward_all(ids, model.new_cache(len(ids))))
    nll = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:]))
    return math.exp(float(nll))


def test_perplexity_on_shakespeare_within_gates(smollm2, int8, int4):
    text = play_text(shakespeare_plays()[0].read_text(encoding="utf-8"))[2000:6000]
    ids = smollm2.tokenizer.encode(text)[:512]
    base = _perplexity(smollm2, ids)
    for model, gate in ((int8, 0.01), (int4, 0.05)):
        ours = _perplexity(model, ids)
        assert abs(ours / base - 1) < gate, (model.info.dtype, ours, base)


def test_int8_greedy_output_matches_float32_on_the_examples(smollm2, int8):
    params = SamplingParams.create(greedy=True, max_new_tokens=GREEDY_TOKENS, ignore_eos=True)
    same = 0
    files = importlib.resources.files("llm_playground.functions") / "examples"
    examples = [item["prompt"] for item in json.loads((files / "function_calling_tests.json").read_text())]
    for prompt in examples:
        ids = smollm2.tokenizer.encode(build_prompt(smollm2.tokenizer, prompt))
        same += complete(smollm2, ids, params)[0].token_ids == complete(int8, ids, params)[0].token_ids
    assert len(examples) == 11 and same >= 9, same


def test_one_call_decoder_equals_the_module_path(int8):
    """The C++ whole-model step (prefill, then decode) against the torch modules over the same weights.

    int8 (int16 activations): with int4's int8 activations, float rounding differences between the two paths
    flip activation roundings and the logits differ by the quantization noise itself (~1), not by a bug."""
    ids = int8.tokenizer.encode("The quick brown fox jumps over the lazy dog because")
    full = int8.forward_full(ids, attentions=True, hidden_states=True)  # explorers: float activations
    cache = int8.new_cache(4)
    prefill = int8.forward(ids[:-2], cache)
    np.testing.assert_allclose(prefill, full.logits[len(ids) - 3], atol=2e-2)
    for end in (len(ids) - 1, len(ids)):
        np.testing.assert_allclose(int8.forward(ids[end - 1:end], cache), full.logits[end - 1], atol=2e-2)
    assert full.attentions is not None and np.allclose(full.attentions.sum(-1), 1, atol=1e-4)
    batch = int8.forward_batch([ids[0], ids[1]], [int8.new_cache(), int8.new_cache()])
    np.testing.assert_allclose(batch[0], full.logits[0], atol=2e-2)


def test_quantized_form_is_cached_and_reloaded(int8, smollm2_dir):
    path = quantized_path(smollm2_dir, "int8")
    assert path.is_file()
    before = path.stat().st_mtime_ns
    again = load_model("smollm2", dtype="int8", threads=1)
    assert path.stat().st_mtime_ns == before  # read, not rebuilt
    for old, new in zip(int8.net.state_dict().values(), again.net.state_dict().values(), strict=True):
        assert torch.equal(old, new)
    assert isinstance(again.net.lm_head, QuantLinear) and again.net.lm_head.data.dtype == torch.int8
    assert again.info.dtype == "int8" and again.info.parameters == int8.info.parameters > 100_000_000
    # The embeddings are the tied head's rows: one copy, int8 even in the int4 format.
    np.testing.assert_allclose(again.embedding_matrix()[:3], again.net.lm_head.weight[:3].numpy())


def test_bad_or_unsupported_dtypes_are_one_line_errors():
    with pytest.raises(InvalidParameter, match="int8, int4"):
        parse_dtype("int3")
    with pytest.raises(InvalidParameter, match="native backend"):
        load_model("smollm2", dtype="int8", backend="transformers")
    with pytest.raises(InvalidParameter, match="native backend"):
        load_model("smollm2", dtype="int4", backend="llamacpp")
