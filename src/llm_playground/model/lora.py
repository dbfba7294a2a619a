"""LoRA adapters for the native Llama decoder: train low-rank updates, save them small, merge them in.

An adapter adds `scale · B·A` (A: rank × in, B: out × rank, scale = alpha / rank) to chosen projections
of every block (`qkv`, `o`, `gate_up`, `down`). While training, the base weights stay frozen and the
update is computed beside them (`LoRALinear`); for inference it is added into a copy of those weights
(`merged_model`), so decoding costs exactly what the base model costs. The merged model shares every
tensor the adapter does not touch with the base model: only the targeted matrices are new.

An adapter file is `adapter.safetensors` (the A and B matrices) plus `adapter.json` (rank, alpha,
targets, training data seed, steps, final loss, and the base model it was trained on). Applying it to
another base model is refused with a one-line error.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from llm_playground.errors import ModelLoadError
from llm_playground.model.llama import LlamaModel, LlamaNet, _gemv_layout
from llm_playground.workspace import atomic_dir

TARGETS = ("qkv", "o", "gate_up", "down")
WEIGHTS_FILE, META_FILE = "adapter.safetensors", "adapter.json"
FINGERPRINT_TOLERANCE = 1e-3  # relative: float32 and bfloat16 loads of one model agree far closer than this


@dataclass
class AdapterMeta:
    rank: int
    alpha: float
    targets: list[str]
    base: dict[str, Any]  # name, parameters, architecture, fingerprint
    training: dict[str, Any] = field(default_factory=dict)  # data seed, steps, final loss, seconds…

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update; B starts at zero, so step 0 is the base model."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, generator: torch.Generator) -> None:
        super().__init__()
        self.base, self.scale = base, alpha / rank
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
        bound = 1 / math.sqrt(base.in_features)  # nn.Linear's (Kaiming-uniform) scale, as in the LoRA paper
        with torch.no_grad():
            self.lora_a.uniform_(-bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_a.to(x.dtype).T @ self.lora_b.to(x.dtype).T) * self.scale

    def delta(self) -> torch.Tensor:
        return (self.lora_b.float() @ self.lora_a.float()) * self.scale


def fingerprint(model: LlamaModel) -> dict[str, Any]:
    """What identifies a base model cheaply: its name, size, shape and a few weight statistics."""
    net = model.net
    # ModuleList items are typed Module, so their attributes are Tensor | Module to mypy
    blocks: list[Any] = list(net.blocks)
    probes: list[torch.Tensor] = [net.norm, blocks[0].input_norm, blocks[-1].post_norm, net.lm_head.weight[:64],
                                  blocks[0].qkv.weight[:16], blocks[-1].down.weight[:16]]
    return {"name": model.info.name, "parameters": model.info.parameters, "architecture": model.info.architecture,
            "layers": model.config.num_layers, "hidden_size": model.config.hidden_size,
            "vocab_size": model.config.vocab_size,
            "fingerprint": [round(float(p.detach().float().abs().mean()), 7) for p in probes]}


def check_base(meta: AdapterMeta, model: LlamaModel, where: Path | str) -> None:
    ours = fingerprint(model)
    theirs = meta.base
    same_shape = all(ours[k] == theirs.get(k) for k in ("parameters", "layers", "hidden_size", "vocab_size"))
    same_weights = same_shape and len(theirs.get("fingerprint", [])) == len(ours["fingerprint"]) and all(
        math.isclose(a, b, rel_tol=FINGERPRINT_TOLERANCE) for a, b in zip(ours["fingerprint"], theirs["fingerprint"],
                                                                          strict=True))
    if not same_weights:
        raise ModelLoadError(f"the adapter {where} was trained on {theirs.get('name')!r} "
                             f"({theirs.get('parameters')} parameters), not on this model {ours['name']!r} "
                             f"({ours['parameters']} parameters)",
                             "use --adapter none, or train an adapter for this model with `llmp tune calls`")


def attach(net: LlamaNet, rank: int, alpha: float, targets: tuple[str, ...] | list[str], seed: int
           ) -> list[nn.Parameter]:
    """Wrap the targeted projections of every block in `LoRALinear`; returns the trainable parameters."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ModelLoadError(f"unknown LoRA target {unknown[0]!r}", f"use some of: {', '.join(TARGETS)}")
    generator = torch.Generator().manual_seed(seed)
    params: list[nn.Parameter] = []
    for block in net.blocks:
        for name in targets:
            wrapped = LoRALinear(getattr(block, name), rank, alpha, generator)
            setattr(block, name, wrapped)
            params += [wrapped.lora_a, wrapped.lora_b]
    return params


def lora_tensors(net: LlamaNet) -> dict[str, torch.Tensor]:
    return {f"blocks.{i}.{name}.{part}": getattr(getattr(block, name), part).detach().float().contiguous()
            for i, block in enumerate(net.blocks) for name in TARGETS
            if isinstance(getattr(block, name), LoRALinear) for part in ("lora_a", "lora_b")}


def save_adapter(directory: Path, tensors: dict[str, torch.Tensor], meta: AdapterMeta) -> None:
    with atomic_dir(Path(directory)) as tmp:
        save_file({k: v.to(torch.bfloat16) for k, v in tensors.items()}, str(tmp / WEIGHTS_FILE))
        os.chmod(tmp / WEIGHTS_FILE, 0o644)  # safetensors creates it private; it is meant to be shared
        (tmp / META_FILE).write_text(json.dumps(dataclasses.asdict(meta), indent=2) + "\n", encoding="utf-8")


def load_adapter(directory: Path | str) -> tuple[dict[str, torch.Tensor], AdapterMeta]:
    directory = Path(directory)
    if not (directory / META_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise ModelLoadError(f"{directory} is not an adapter (it needs {META_FILE} and {WEIGHTS_FILE})",
                             "give a directory written by `llmp tune calls`, or --adapter none")
    try:
        raw = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        meta = AdapterMeta(**raw)
        tensors = {k: v.float() for k, v in load_file(str(directory / WEIGHTS_FILE)).items()}
    except Exception as exc:  # bad JSON, missing fields, a damaged safetensors file
        raise ModelLoadError(f"cannot read the adapter in {directory} ({type(exc).__name__}: {exc})",
                             "train it again with `llmp tune calls`, or use --adapter none") from None
    return tensors, meta


def clone_net(net: LlamaNet, replaced: dict[str, torch.Tensor] | None = None) -> LlamaNet:
    """A second network over the same tensors (shared, not copied), except the `replaced` ones."""
    with torch.device("meta"):
        clone = LlamaNet(net.c)
    state = {k: v.detach() for k, v in net.state_dict().items()} | (replaced or {})
    clone.load_state_dict(state, assign=True, strict=True)
    return clone.eval().requires_grad_(False)


def merged_model(model: LlamaModel, tensors: dict[str, torch.Tensor], meta: AdapterMeta, label: str) -> LlamaModel:
    """A copy of `model` with the adapter added into its weights; untouched tensors are shared, not copied."""
    base = model.net
    replaced: dict[str, torch.Tensor] = {}
    for i, block in enumerate(base.blocks):
        for name in meta.targets:
            key = f"blocks.{i}.{name}"
            try:
                a, b = tensors[f"{key}.lora_a"], tensors[f"{key}.lora_b"]
            except KeyError:
                raise ModelLoadError(f"the adapter lacks {key}", "train it again with `llmp tune calls`") from None
            weight = getattr(block, name).weight.detach()
            # Stored like the base weights (`_gemv_layout`), so the merged model decodes at the same speed.
            replaced[f"{key}.weight"] = _gemv_layout((weight.float() + (b @ a) * meta.scale).to(weight.dtype))
    adapted = copy.copy(model)
    if model.quantization:  # int8/int4 weights: the merged matrices quantized again in the model's format
        from llm_playground.model.llama import quantized_net
        from llm_playground.model.quant import quantize

        state = {k: v.detach() for k, v in base.state_dict().items()}
        for key, weight in replaced.items():
            module = key.removesuffix(".weight")
            matrix = quantize(weight, model.quantization)
            state |= {f"{module}.data": matrix.data, f"{module}.scale": matrix.scale,
                      f"{module}.minimum": matrix.minimum}
        adapted.net = quantized_net(base.c, state)
    else:
        adapted.net = clone_net(base, replaced)
    adapted.info = dataclasses.replace(model.info, name=f"{model.info.name}+{label}")
    return adapted
