"""Our GPT: KV-cache decoding equals a full forward pass, introspection, the registry, GPT-2 both ways."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gpt_helpers import shakespeare_text

from llm_playground.errors import InvalidParameter, ModelLoadError
from llm_playground.explore.perplexity import perplexity
from llm_playground.generate.loop import complete
from llm_playground.generate.params import SamplingParams
from llm_playground.model import load_model
from llm_playground.model.base import Introspectable, LanguageModel
from llm_playground.model.convert import ensure_converted
from llm_playground.model.gpt import GPT, GPTConfig
from llm_playground.model.gpt_hf import export_hf, gpt_from_gpt2
from llm_playground.model.gpt_model import GPTModel, checkpoint_for, load_gpt, save_gpt
from llm_playground.tokenizer import train_sentencepiece


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    (root / "corpus.txt").write_text(shakespeare_text(60_000), encoding="utf-8")
    train_sentencepiece(root / "corpus.txt", root / "tokenizer.model", vocab_size=400)
    return root / "tokenizer.model"


def _net(positions: str = "learned", bias: bool = False, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    net = GPT(GPTConfig(vocab_size=400, block_size=32, n_layer=2, n_head=4, n_embd=32, bias=bias,
                        positions=positions))
    with torch.no_grad():  # random biases and norms, so a mapping mistake cannot hide behind zeros and ones
        for name, param in net.named_parameters():
            if name.endswith("bias") or "ln" in name:
                param.add_(torch.randn_like(param) * 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def gpt_dir(tmp_path_factory, tokenizer_file):
    directory = tmp_path_factory.mktemp("gpt") / "model"
    save_gpt(directory, _net(bias=True), tokenizer_file)
    return directory


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_cached_decoding_matches_full_forward(positions, tokenizer_file):
    from llm_playground.tokenizer import load_tokenizer

    model = GPTModel(_net(positions), load_tokenizer(tokenizer_file))
    ids = list(np.random.default_rng(0).integers(0, 400, 20))
    full = model.net(torch.tensor([ids]))[0][0].detach().numpy()
    cache = model.new_cache(4)  # grows past its first capacity on the way
    steps = [model.forward(ids[:7], cache)] + [model.forward([t], cache) for t in ids[7:12]]
    steps.append(model.forward(ids[12:], cache))
    np.testing.assert_allclose(steps[0], full[6], atol=1e-5)
    for offset, logits in enumerate(steps[1:6]):
        np.testing.assert_allclose(logits, full[7 + offset], atol=1e-5)
    np.testing.assert_allclose(steps[-1], full[-1], atol=1e-5)


def test_introspection(gpt_dir):
    model = load_gpt(gpt_dir)
    assert isinstance(model, LanguageModel) and isinstance(model, Introspectable)
    ids = model.tokenizer.encode("To be, or not to be")
    result = model.forward_full(ids)
    assert result.attentions.shape == (2, 4, len(ids), len(ids))
    np.testing.assert_allclose(result.attentions.sum(-1), 1.0, atol=1e-5)
    assert np.all(np.triu(result.attentions[0, 0], 1) == 0)
    assert result.hidden_states.shape == (3, len(ids), 32)
    np.testing.assert_allclose(result.logits[-1], model.forward(ids, model.new_cache()), atol=1e-5)


def test_registry_generation_and_perplexity(gpt_dir):
    model = load_model(str(gpt_dir), threads=1)
    assert isinstance(model, GPTModel) and model.info.architecture == "llmp-gpt"
    params = SamplingParams(max_new_tokens=10, seed=3, ignore_eos=True)
    first, second = (complete(model, model.tokenizer.encode("ROMEO:"), params)[0] for _ in range(2))
    assert first.completion_tokens == 10 and first.token_ids == second.token_ids
    ids = model.tokenizer.encode(shakespeare_text(2000))  # longer than the context: windows
    assert len(ids) > model.context_length
    result = perplexity(model, ids)
    assert result.windows > 1 and 1 < result.perplexity < 1e4
    with pytest.raises(InvalidParameter, match="native backend only"):
        load_model(str(gpt_dir), backend="transformers")
    # A context too short for a function call is named as such, not as a request "longer than -256 tokens".
    from llm_playground.errors import ContextOverflow
    from llm_playground.functions import call_functions, load_functions

    examples = Path(__file__).parents[1] / "src/llm_playground/functions/examples"
    functions = load_functions(examples / "functions_definition.json")
    with pytest.raises(ContextOverflow, match="too short for a function call"):
        call_functions(model, [{"role": "user", "content": "Greet shrek"}], functions)


@pytest.mark.parametrize("bias", [False, True])
def test_export_matches_transformers(tmp_path, tokenizer_file, bias):
    from transformers import AutoModelForCausalLM

    source = tmp_path / "ours"
    save_gpt(source, _net(bias=bias, seed=1), tokenizer_file)
    out = export_hf(source, tmp_path / "hf").path
    assert {"config.json", "model.safetensors", "tokenizer.model", "tokenizer.json", "TOKENIZER.md"} <= {
        p.name for p in out.iterdir()}
    theirs = AutoModelForCausalLM.from_pretrained(out).eval()
    ours = load_gpt(source)
    ids = torch.tensor([ours.tokenizer.encode("KING LEAR: Nothing will come of nothing")[:32]])
    with torch.no_grad():
        expected = ours.net(ids)[0]
        got = theirs(ids).logits
    assert (got - expected).abs().max().item() < 1e-4


def test_rotary_export_is_refused(tmp_path, tokenizer_file):
    save_gpt(tmp_path / "rot", _net("rotary"), tokenizer_file)
    with pytest.raises(InvalidParameter, match="rotary"):
        export_hf(tmp_path / "rot", tmp_path / "hf")


@pytest.mark.parametrize("activation", ["gelu_new", "gelu"])
def test_gpt2_weights_load(tmp_path, activation):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    theirs = GPT2LMHeadModel(GPT2Config(vocab_size=100, n_positions=24, n_embd=32, n_layer=2, n_head=4,
                                        activation_function=activation)).eval()
    with torch.no_grad():
        for name, param in theirs.named_parameters():
            if name.endswith("bias") or "ln_" in name:
                param.add_(torch.randn_like(param) * 0.1)
    theirs.save_pretrained(tmp_path / "gpt2")
    ours = gpt_from_gpt2(tmp_path / "gpt2")
    ids = torch.randint(0, 100, (2, 24))
    with torch.no_grad():
        assert (ours(ids)[0] - theirs(ids).logits).abs().max().item() < 1e-4


def test_damaged_weights_are_one_line_errors(tmp_path, tokenizer_file):
    save_gpt(tmp_path / "m", _net(), tokenizer_file)
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        load_gpt(tmp_path / "m")


def test_a_truncated_best_checkpoint_falls_back_to_last_with_a_warning(tmp_path, tokenizer_file, caplog):
    run = tmp_path / "run"
    for name in ("best", "last"):
        save_gpt(run / "checkpoints" / name, _net(), tokenizer_file)
    weights = run / "checkpoints" / "best" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # the header is intact, the tensors are not
    with caplog.at_level("WARNING"):
        assert checkpoint_for(run) == run / "checkpoints" / "last"
    assert "best is truncated or corrupt: using last" in caplog.text
    assert load_gpt(run).info.name
    (run / "checkpoints" / "last" / "model.safetensors").write_bytes(b"\x00" * 8)
    with pytest.raises(ModelLoadError, match="truncated or corrupt"):
        checkpoint_for(run)


def test_a_file_that_is_not_gguf_is_named_so(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("<html>not found</html>")
    with pytest.raises(ModelLoadError, match="is not a valid GGUF file"):
        ensure_converted(fake)
    fake.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 20)  # the signature, then a torn header
    with pytest.raises(ModelLoadError, match="truncated or damaged"):
        ensure_converted(fake)


@pytest.mark.parametrize("autocast", [False, True])
def test_fused_head_loss_matches_cross_entropy(autocast):
    """The chunked head + loss gives the loss and gradients of F.cross_entropy over full logits."""
    import torch.nn.functional as F

    from llm_playground.model import head_loss

    torch.manual_seed(0)
    vocab, width = 1000, 32
    rows = head_loss._rows(vocab)
    h0, w0 = torch.randn(2 * rows + 7, width), torch.randn(vocab, width) * 0.1  # 3 chunks, the last one short
    targets = torch.randint(0, vocab, (h0.shape[0],))
    results = []
    for fused in (False, True):
        h, w = h0.clone().requires_grad_(), w0.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = head_loss.linear_cross_entropy(h, w, targets) if fused else F.cross_entropy(h @ w.T, targets)
        (2 * loss).backward()
        results.append((loss.float(), h.grad, w.grad))
    tolerance = {"atol": 2e-2, "rtol": 2e-2} if autocast else {"atol": 1e-5, "rtol": 1e-4}
    for plain, fused in zip(*results, strict=True):
        torch.testing.assert_close(fused.float(), plain.float(), **tolerance)
    with torch.no_grad():
        torch.testing.assert_close(head_loss.linear_cross_entropy(h0, w0, targets), results[0][0], atol=1e-5, rtol=1e-5)
