"""Our GPT ⇄ GPT-2's transformers format.

A learned-position GPT is GPT-2 up to names and layout: transformers' `Conv1D` stores weights as
(in, out), ours as `nn.Linear`'s (out, in); GPT-2 always has biases, so a bias-free GPT exports zeros.
GELU maps to `activation_function` "gelu" (ours, exact) or "gelu_new" (GPT-2's tanh approximation).
Rotary GPTs have no GPT-2 equivalent and are refused.

The tokenizer of an export is our SentencePiece model (`tokenizer.model`, copied as is) and, when the
converted `tokenizer.json` gives the same ids on the training corpus and edge cases (tokenizer/spm_to_hf.py),
that too, so `AutoTokenizer.from_pretrained` works; a `tokenizer.json` that encodes differently would be
worse than none, so then only a note (`TOKENIZER.md`) says how to load the SentencePiece model.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from llm_playground.errors import InvalidParameter, ModelLoadError
from llm_playground.model.gpt import GPT, GPTConfig
from llm_playground.model.gpt_model import checkpoint_for, is_run_directory, load_net, tokenizer_for
from llm_playground.tokenizer import SentencePieceTokenizer
from llm_playground.tokenizer.spm_to_hf import verification_texts, write_hf_tokenizer
from llm_playground.workspace import Workspace, atomic_dir

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
ACTIVATIONS = {"none": "gelu", "tanh": "gelu_new"}
TOKENIZER_NOTE = """# Tokenizer

{how}

`tokenizer.model` is the SentencePiece model this GPT was trained with (byte fallback; unk 0,
bos 1, eos 2), copied unchanged. Load it with:

    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file="tokenizer.model")
    ids = sp.encode("To be, or not to be")

The weights load with `transformers.AutoModelForCausalLM.from_pretrained(this_directory)`.
"""
WITH_JSON = """`transformers.AutoTokenizer.from_pretrained(this_directory)` loads `tokenizer.json`, a conversion of
the SentencePiece model below that gave the same ids on the training corpus and edge cases before it was
written. As in SentencePiece, the text `<s>`, `</s>` or `<unk>` is plain text (`split_special_tokens`);
pass `split_special_tokens=False` to `from_pretrained` to read it as the special token."""
WITHOUT_JSON = """There is no `tokenizer.json`: its conversion did not encode exactly as the SentencePiece model
below ({why})."""


@dataclass(frozen=True)
class HFExport:
    path: Path
    files: list[str]
    tokenizer_json_skipped: str | None  # why tokenizer.json was not written; None when it was
    checked_texts: int = 0  # how many texts the converted tokenizer was compared with ours on
    corpus: Path | None = None  # the training corpus those texts came from, when it was found


def _to_gpt2_state(net: GPT) -> dict[str, torch.Tensor]:
    c = net.config
    state: dict[str, torch.Tensor] = {}
    for key, value in net.state_dict().items():
        if key == "lm_head.weight":
            continue
        value = value.detach().float().cpu()
        state["transformer." + key] = value.T.contiguous() if key.endswith(CONV1D) else value.clone()
    if not c.bias:  # GPT-2 has a bias everywhere: zeros change nothing
        for i in range(c.n_layer):
            p = f"transformer.h.{i}."
            for name, size in (("ln_1", c.n_embd), ("ln_2", c.n_embd), ("attn.c_attn", 3 * c.n_embd),
                               ("attn.c_proj", c.n_embd), ("mlp.c_fc", 4 * c.n_embd), ("mlp.c_proj", c.n_embd)):
                state[f"{p}{name}.bias"] = torch.zeros(size)
        state["transformer.ln_f.bias"] = torch.zeros(c.n_embd)
    return state


def export_hf(source: Path, out: Path) -> HFExport:
    """A run (its best checkpoint, else last) or GPT directory → a GPT-2 transformers directory at `out`."""
    from transformers import GPT2Config, GPT2LMHeadModel

    directory = checkpoint_for(source) if is_run_directory(source) else source
    net, raw = load_net(directory)
    c = net.config
    if c.positions != "learned":
        raise InvalidParameter(f"{source} uses rotary positions, which GPT-2's format cannot express",
                               "export a GPT trained with --set positions=learned")
    tokenizer = tokenizer_for(directory, raw)
    config = GPT2Config(vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
                        n_head=c.n_head, activation_function=ACTIVATIONS[c.gelu], resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, layer_norm_epsilon=c.layer_norm_eps, tie_word_embeddings=True,
                        bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id, pad_token_id=tokenizer.eos_id)
    model = GPT2LMHeadModel(config)
    missing, unexpected = model.load_state_dict(_to_gpt2_state(net), strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise ModelLoadError(f"GPT-2 mapping failed (missing {missing}, unexpected {unexpected})", "please report it")
    model.tie_weights()
    tokenizer_file = (directory / raw["tokenizer"]).resolve()
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        shutil.copy2(tokenizer_file, tmp / "tokenizer.model")
        skipped: str | None = "not a SentencePiece model"
        texts, corpus = [], _training_corpus(tokenizer_file)
        if isinstance(tokenizer, SentencePieceTokenizer):
            texts = verification_texts(tokenizer, corpus)
            skipped = write_hf_tokenizer(tokenizer, tmp, c.block_size, texts)
        how = WITH_JSON if skipped is None else WITHOUT_JSON.format(why=skipped)
        (tmp / "TOKENIZER.md").write_text(TOKENIZER_NOTE.format(how=how), encoding="utf-8")
        files = sorted(p.name for p in tmp.iterdir())
    return HFExport(out, files, skipped, len(texts), corpus)


def _training_corpus(tokenizer_file: Path) -> Path | None:
    """The corpus of the workspace the tokenizer belongs to (`models/tokenizer.model`, or the copy a run
    keeps in `runs/NAME/`): the text it was trained on, the best sample to check a conversion with."""
    for root in tokenizer_file.parents[1:3]:
        workspace = Workspace(root)
        if tokenizer_file.parent in (workspace.models_dir, workspace.run_dir(tokenizer_file.parent.name)):
            return workspace.corpus_path if workspace.corpus_path.is_file() else None
    return None


def gpt_from_gpt2(directory: Path) -> GPT:
    """Our GPT with the weights of a GPT-2 transformers directory: config.json and .safetensors weights
    (PyTorch .bin files are not read: save the model with safetensors)."""
    from safetensors.torch import load_file

    try:
        raw = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {directory / 'config.json'}: {exc}", "give a GPT-2 directory") from None
    if raw.get("model_type") != "gpt2":
        raise ModelLoadError(f"{directory} is a {raw.get('model_type')!r} model, not GPT-2", "give a GPT-2 directory")
    activation = {v: k for k, v in ACTIVATIONS.items()} | {"gelu_pytorch_tanh": "tanh"}
    if raw.get("activation_function", "gelu_new") not in activation:
        raise ModelLoadError(f"activation {raw.get('activation_function')!r} is not supported", "use gelu or gelu_new")
    config = GPTConfig(vocab_size=raw["vocab_size"], block_size=raw.get("n_positions", 1024), n_layer=raw["n_layer"],
                       n_head=raw["n_head"], n_embd=raw["n_embd"], bias=True, positions="learned",
                       gelu=activation[raw.get("activation_function", "gelu_new")],  # type: ignore[arg-type]
                       layer_norm_eps=raw.get("layer_norm_epsilon", 1e-5))
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"no .safetensors weights in {directory}", "save the model with safetensors")
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights |= load_file(str(file))
    state = {}
    for key, value in weights.items():
        name = key.removeprefix("transformer.")
        if name == "lm_head.weight" or name.endswith((".attn.bias", ".attn.masked_bias")):
            continue  # tied to wte; old transformers stored the causal mask as a buffer
        state[name] = value.T.contiguous() if name.endswith(CONV1D) else value
    state["lm_head.weight"] = state["wte.weight"]
    net = GPT(config)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{directory} does not look like GPT-2 weights: {exc}", "give a GPT-2 directory") from None
    return net.eval()
