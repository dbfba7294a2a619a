"""A lean Llama-family decoder (Llama, SmolLM2, Mistral, Qwen2) for inference over a preallocated KV cache.

It loads the weights of a Hugging Face directory (the format the GGUF conversion writes) and matches
transformers' logits, with less work per step: fused QKV and gate/up projections, the cache written in
place, grouped-query attention without expanding K/V during decoding, and the LM head applied to the
last position only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

from llm_playground.errors import ModelLoadError
from llm_playground.model.attention import (
    RopeTables,
    apply_rope,
    attention_with_weights,
    create_causal_mask,
    rope_inv_freq,
)
from llm_playground.model.base import FullForward, ModelInfo, describe_dtype, full_forward_from_torch
from llm_playground.model.kvcache import TensorCache
from llm_playground.model.quant import QuantizedMatrix, QuantLinear, kernels, quantize, quantized_path
from llm_playground.tokenizer.hf import HFTokenizer

SUPPORTED_ARCHITECTURES = ("llama", "mistral", "qwen2")


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_positions: int
    tie_embeddings: bool
    attention_bias: bool
    model_type: str

    @classmethod
    def from_hf(cls, raw: dict) -> LlamaConfig:
        model_type = raw.get("model_type", "")
        if model_type not in SUPPORTED_ARCHITECTURES:
            raise ModelLoadError(f"architecture {model_type!r} is not supported by the native backend",
                                 "use --backend transformers")
        rope = raw.get("rope_parameters") or raw.get("rope_scaling") or {}
        if rope.get("rope_type", rope.get("type", "default")) != "default":
            raise ModelLoadError(f"rope scaling {rope.get('rope_type')!r} is not supported by the native backend",
                                 "use --backend transformers")
        heads = raw["num_attention_heads"]
        return cls(
            vocab_size=raw["vocab_size"],
            hidden_size=raw["hidden_size"],
            intermediate_size=raw["intermediate_size"],
            num_layers=raw["num_hidden_layers"],
            num_heads=heads,
            num_kv_heads=raw.get("num_key_value_heads") or heads,
            head_dim=raw.get("head_dim") or raw["hidden_size"] // heads,
            rms_norm_eps=raw.get("rms_norm_eps", 1e-6),
            rope_theta=rope.get("rope_theta", raw.get("rope_theta", 10000.0)),
            max_positions=raw.get("max_position_embeddings", 2048),
            tie_embeddings=raw.get("tie_word_embeddings", False),
            attention_bias=raw.get("attention_bias", model_type == "qwen2"),
            model_type=model_type,
        )


class LlamaCache(TensorCache):
    def __init__(self, config: LlamaConfig, capacity: int, dtype: torch.dtype, batch: int = 1) -> None:
        super().__init__(config.num_layers, batch, config.num_kv_heads, capacity, config.head_dim, dtype)


def _gemv_layout(weight: torch.Tensor) -> torch.Tensor:
    """The weight (out, in) as nn.Linear expects, stored in the layout the CPU's GEMV reads fastest.

    Decoding is one-row GEMVs. Measured on the AVX-512 CPUs here, MKL reads float32 weights about twice
    as fast stored as (in, out) (a transposed view keeps nn.Linear's shape), while the half-precision
    kernels are fast only on the usual (out, in) storage and 20–40x slower on the transposed one.
    """
    if weight.dtype == torch.float32 and weight.device.type == "cpu":
        return weight.T.contiguous().T
    return weight.contiguous()


class _Block(nn.Module):
    def __init__(self, c: LlamaConfig) -> None:
        super().__init__()
        self.c = c
        self.q_size, self.kv_size = c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim
        self.input_norm = nn.Parameter(torch.ones(c.hidden_size))
        self.post_norm = nn.Parameter(torch.ones(c.hidden_size))
        self.qkv = nn.Linear(c.hidden_size, self.q_size + 2 * self.kv_size, bias=c.attention_bias)
        self.o = nn.Linear(self.q_size, c.hidden_size, bias=False)
        self.gate_up = nn.Linear(c.hidden_size, 2 * c.intermediate_size, bias=False)
        self.down = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, layer: int, cache: LlamaCache | None, cos: torch.Tensor,
                sin: torch.Tensor, attention_out: list[torch.Tensor] | None = None) -> torch.Tensor:
        c = self.c
        batch, length, _ = x.shape
        start = cache.length if cache is not None else 0
        end = start + length
        h = F.rms_norm(x, (c.hidden_size,), self.input_norm, c.rms_norm_eps)
        q, k, v = self.qkv(h).split((self.q_size, self.kv_size, self.kv_size), dim=-1)
        q = apply_rope(q.view(batch, length, c.num_heads, c.head_dim).transpose(1, 2), cos, sin)  # (B, nh, T, hs)
        k = apply_rope(k.view(batch, length, c.num_kv_heads, c.head_dim).transpose(1, 2), cos, sin)
        v = v.view(batch, length, c.num_kv_heads, c.head_dim).transpose(1, 2)
        if cache is None:  # training: whole sequences, no cache, every op differentiable
            keys, values = k, v
        else:
            cache.k[layer, :, :, start:end] = k
            cache.v[layer, :, :, start:end] = v
            keys, values = cache.k[layer, :, :, :end], cache.v[layer, :, :, :end]
        if attention_out is not None:
            group = c.num_heads // c.num_kv_heads
            keys, values = keys.repeat_interleave(group, dim=1), values.repeat_interleave(group, dim=1)
            attn, weights = attention_with_weights(q, keys, values)
            attention_out.append(weights)
            attn = attn.transpose(1, 2).reshape(batch, length, self.q_size)
        elif length == 1:
            # One query per head: fold each KV group's query heads into the query axis, so K/V are
            # read once and never expanded.
            group = c.num_heads // c.num_kv_heads
            q = q.view(batch, c.num_kv_heads, group, c.head_dim)
            attn = F.scaled_dot_product_attention(q, keys, values).reshape(batch, 1, self.q_size)
        else:
            mask = None if start == 0 else create_causal_mask(length, start, x.device)
            attn = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, is_causal=start == 0,
                                                  enable_gqa=True)
            attn = attn.transpose(1, 2).reshape(batch, length, self.q_size)
        x = x + self.o(attn)
        h = F.rms_norm(x, (c.hidden_size,), self.post_norm, c.rms_norm_eps)
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


    def forward_batch(self, x: torch.Tensor, layer: int, caches: Sequence[LlamaCache], cos: torch.Tensor,
                      sin: torch.Tensor) -> torch.Tensor:
        """One new token of each of several sequences (x: (batch, 1, hidden)), each over its own cache."""
        c = self.c
        batch = x.shape[0]
        h = F.rms_norm(x, (c.hidden_size,), self.input_norm, c.rms_norm_eps)
        q, k, v = self.qkv(h).split((self.q_size, self.kv_size, self.kv_size), dim=-1)
        q = apply_rope(q.view(batch, 1, c.num_heads, c.head_dim).transpose(1, 2), cos, sin)  # (B, nh, 1, hs)
        k = apply_rope(k.view(batch, 1, c.num_kv_heads, c.head_dim).transpose(1, 2), cos, sin)
        v = v.view(batch, 1, c.num_kv_heads, c.head_dim).transpose(1, 2)
        group = c.num_heads // c.num_kv_heads
        outputs = []
        for i, cache in enumerate(caches):  # the sequences' lengths differ: attention is per sequence
            position = cache.length
            cache.k[layer, :, :, position] = k[i, :, 0]
            cache.v[layer, :, :, position] = v[i, :, 0]
            keys, values = cache.k[layer, :, :, : position + 1], cache.v[layer, :, :, : position + 1]
            query = q[i : i + 1].reshape(1, c.num_kv_heads, group, c.head_dim)
            outputs.append(F.scaled_dot_product_attention(query, keys, values).reshape(1, 1, self.q_size))
        x = x + self.o(torch.cat(outputs))
        h = F.rms_norm(x, (c.hidden_size,), self.post_norm, c.rms_norm_eps)
        gate, up = self.gate_up(h).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class LlamaNet(nn.Module):
    inv_freq: torch.Tensor  # a buffer (rotary frequencies), declared for the type checker

    def __init__(self, c: LlamaConfig) -> None:
        super().__init__()
        self.c = c
        self.blocks = nn.ModuleList(_Block(c) for _ in range(c.num_layers))
        self.norm = nn.Parameter(torch.ones(c.hidden_size))
        # With tied embeddings the input embedding rows are read from the head's weight: one copy of the
        # largest matrix, stored in the layout the per-step GEMV wants.
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.embed = None if c.tie_embeddings else nn.Embedding(c.vocab_size, c.hidden_size)
        self.register_buffer("inv_freq", rope_inv_freq(c.head_dim, c.rope_theta), persistent=False)
        self._rope = RopeTables()
        self.engine: Any = None  # the C++ decoder (quant.kernels().Engine) when the weights are quantized

    def _rope_tables(self, end: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return self._rope.table(self.inv_freq, end, dtype, self.inv_freq.device)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        if self.embed is not None:
            return self.embed(ids)
        if isinstance(self.lm_head, QuantLinear):  # the rows dequantized, never the whole matrix
            rows = kernels().dequantize_rows(self.lm_head.data, self.lm_head.scale, self.lm_head.minimum,
                                             ids.reshape(-1))
            return rows.view(*ids.shape, self.c.hidden_size)
        return self.lm_head.weight[ids]

    def _final_norm(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (self.c.hidden_size,), self.norm, self.c.rms_norm_eps)

    def forward_hidden(self, ids: torch.Tensor, attention_out: list[torch.Tensor] | None = None,
                       states: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The final hidden states (batch, length, hidden) of whole sequences, without a KV cache and
        differentiable: what fine-tuning needs (the LM head is left to the caller, who applies it only
        where a loss is taken) and what introspection reads (per-layer attention weights and states)."""
        x = self._embed(ids)
        cos, sin = (t[: ids.shape[1]] for t in self._rope_tables(ids.shape[1], x.dtype))
        if states is not None:
            states.append(x)
        for layer, block in enumerate(self.blocks):
            x = block(x, layer, None, cos, sin, attention_out)
            if states is not None:
                states.append(x)
        x = self._final_norm(x)
        if states is not None:
            states[-1] = x  # as transformers reports it: the last hidden state after the final norm
        return x

    def forward_full(self, ids: torch.Tensor, attentions: bool, hidden_states: bool
                     ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Logits of every position, plus per-layer attention weights and hidden states, in one pass."""
        weights: list[torch.Tensor] = []
        states: list[torch.Tensor] = []
        x = self.forward_hidden(ids, weights if attentions else None, states if hidden_states else None)
        return self.lm_head(x), weights, states

    def forward(self, ids: torch.Tensor, cache: LlamaCache, last_only: bool = True) -> torch.Tensor:
        """Logits of the last position, (batch, vocab), or of every new one, (batch, new tokens, vocab)."""
        length = ids.shape[1]
        start, end = cache.length, cache.length + length
        cache.reserve(end)
        x = self._embed(ids)
        if self.engine is not None and ids.shape[0] == 1 and cache.k.dtype == torch.float32:
            # Quantized weights: the whole step in one C++ call (kernels.cpp), no torch ops per layer.
            cos_table, sin_table = self._rope_tables(end, torch.float32)
            logits = self.engine.forward(x[0], cache.k, cache.v, start, cos_table, sin_table, last_only)
            cache.length = end
            return logits.unsqueeze(0)
        cos_table, sin_table = self._rope_tables(end, x.dtype)
        cos, sin = cos_table[start:end], sin_table[start:end]
        for layer, block in enumerate(self.blocks):
            x = block(x, layer, cache, cos, sin)
        cache.length = end
        return self.lm_head(self._final_norm(x[:, -1] if last_only else x))


    def forward_batch(self, ids: torch.Tensor, caches: Sequence[LlamaCache]) -> torch.Tensor:
        """Logits (batch, vocab) of one new token per sequence, ids (batch,), each sequence with its own cache.

        The projections, the MLP and the LM head run once for the whole batch, so the weights are read
        once per step instead of once per sequence (what continuous batching gains on a memory-bound CPU).
        """
        for cache in caches:
            cache.reserve(cache.length + 1)
        positions = torch.tensor([cache.length for cache in caches])
        x = self._embed(ids).unsqueeze(1)
        cos_table, sin_table = self._rope_tables(int(positions.max()) + 1, x.dtype)
        cos, sin = cos_table[positions][:, None, None], sin_table[positions][:, None, None]
        for layer, block in enumerate(self.blocks):
            x = block.forward_batch(x, layer, caches, cos, sin)  # type: ignore[operator]  # ModuleList items are Module
        for cache in caches:
            cache.length += 1
        return self.lm_head(self._final_norm(x[:, -1]))


class LlamaModel:
    """A `LanguageModel` over `LlamaNet`, loaded from a Hugging Face directory."""

    def __init__(self, directory: Path, name: str | None = None, dtype: torch.dtype | str = torch.float32) -> None:
        directory = Path(directory)
        raw = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        self.config = LlamaConfig.from_hf(raw)
        # `quantization` is "int8"/"int4" for weight-only formats; activations and the KV cache stay float32.
        self.quantization = dtype if isinstance(dtype, str) else None
        self.dtype = torch.float32 if isinstance(dtype, str) else dtype
        self.tokenizer = HFTokenizer(directory)
        if self.quantization:
            self.net = _load_quantized_net(self.config, directory, self.quantization)
        else:
            self.net = _load_net(self.config, directory, self.dtype)
        self.info = ModelInfo(
            name=name or directory.name, backend="native", architecture=self.config.model_type,
            parameters=count_parameters(self.net), context_length=self.config.max_positions,
            vocab_size=self.config.vocab_size, dtype=self.quantization or describe_dtype(dtype),
            location=str(directory),
        )

    @property
    def context_length(self) -> int:
        return self.config.max_positions

    def new_cache(self, capacity: int | None = None) -> LlamaCache:
        return LlamaCache(self.config, min(capacity or 256, self.context_length), self.dtype)

    @torch.inference_mode()
    def forward(self, ids: Sequence[int], cache: LlamaCache) -> np.ndarray:
        tensor = torch.as_tensor(np.asarray(ids, dtype=np.int64)).unsqueeze(0)
        return self.net(tensor, cache)[0].float().numpy()

    @torch.inference_mode()
    def forward_batch(self, ids: Sequence[int], caches: Sequence[LlamaCache]) -> np.ndarray:
        """One token for each of several sequences (ids[i] appended to caches[i]): logits (len(ids), vocab)."""
        tensor = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        return self.net.forward_batch(tensor, caches).float().numpy()

    @torch.inference_mode()
    def forward_all(self, ids: Sequence[int], cache: LlamaCache) -> np.ndarray:
        """Like `forward`, but the logits of every new position, (len(ids), vocab): scoring texts in one pass."""
        tensor = torch.as_tensor(np.asarray(ids, dtype=np.int64)).unsqueeze(0)
        return self.net(tensor, cache, last_only=False)[0].float().numpy()

    def embedding_matrix(self) -> np.ndarray:
        """The input embedding table, (vocab, hidden), read-only: a view of the weights for float32, a
        float32 copy otherwise (numpy has no bfloat16). With tied embeddings it is the LM head's weight."""
        weight = self.net.embed.weight if self.net.embed is not None else self.net.lm_head.weight
        matrix = weight.detach().numpy() if weight.dtype == torch.float32 else weight.detach().float().numpy()
        matrix.flags.writeable = False
        return matrix

    @torch.inference_mode()
    def forward_full(self, ids: Sequence[int], attentions: bool = True, hidden_states: bool = True) -> FullForward:
        return full_forward_from_torch(ids, self.context_length,
                                       lambda tensor: self.net.forward_full(tensor, attentions, hidden_states))


def _load_net(c: LlamaConfig, directory: Path, dtype: torch.dtype) -> LlamaNet:
    c, state = _float_state(c, directory)
    with torch.device("meta"):
        net = LlamaNet(c)
    for key in list(state):  # one tensor at a time, dropping each original: peak memory ~1 extra matrix
        value = state.pop(key).to(dtype)
        state[key] = _gemv_layout(value) if value.dim() == 2 and key != "embed.weight" else value
    net.load_state_dict(state, assign=True, strict=True)
    return net.eval().requires_grad_(False)


def _float_state(c: LlamaConfig, directory: Path) -> tuple[LlamaConfig, dict[str, torch.Tensor]]:
    """The weights of a HF directory under LlamaNet's names (QKV and gate/up fused), as stored."""
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"no .safetensors weights in {directory}", "convert or download the model again")
    weights: dict[str, torch.Tensor] = {}
    try:
        for file in files:
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():  # noqa: SIM118 (safe_open is not a mapping)
                    weights[key.removeprefix("model.")] = handle.get_tensor(key)
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise ModelLoadError(f"cannot read weights in {directory}: {exc}", "convert the model again") from exc

    def take(name: str) -> torch.Tensor:
        try:
            return weights.pop(name)
        except KeyError:
            raise ModelLoadError(f"weight {name!r} missing in {directory}", "convert the model again") from None

    embed = take("embed_tokens.weight")
    state: dict[str, torch.Tensor] = {"norm": take("norm.weight")}
    for i in range(c.num_layers):
        p = f"layers.{i}."
        proj = [take(f"{p}self_attn.{n}_proj.weight") for n in "qkv"]
        state[f"blocks.{i}.qkv.weight"] = torch.cat(proj)
        if c.attention_bias:
            state[f"blocks.{i}.qkv.bias"] = torch.cat([take(f"{p}self_attn.{n}_proj.bias") for n in "qkv"])
        state[f"blocks.{i}.o.weight"] = take(f"{p}self_attn.o_proj.weight")
        state[f"blocks.{i}.gate_up.weight"] = torch.cat([take(f"{p}mlp.gate_proj.weight"),
                                                         take(f"{p}mlp.up_proj.weight")])
        state[f"blocks.{i}.down.weight"] = take(f"{p}mlp.down_proj.weight")
        state[f"blocks.{i}.input_norm"] = take(f"{p}input_layernorm.weight")
        state[f"blocks.{i}.post_norm"] = take(f"{p}post_attention_layernorm.weight")
    head = weights.pop("lm_head.weight", None)
    if head is None and not c.tie_embeddings:
        c = dataclasses.replace(c, tie_embeddings=True)
    state["lm_head.weight"] = embed if c.tie_embeddings or head is None else head  # head is None → tied above
    if not c.tie_embeddings:
        state["embed.weight"] = embed
    return c, state


QUANTIZED = ("qkv", "o", "gate_up", "down")


def count_parameters(net: LlamaNet) -> int:
    """Weights counted once (tied ones too), quantized matrices by their logical (out, in) size."""
    total = sum(p.numel() for p in net.parameters())
    for module in net.modules():
        if isinstance(module, QuantLinear):
            total += module.out_features * module.in_features
    return total


def _load_quantized_net(c: LlamaConfig, directory: Path, fmt: str) -> LlamaNet:
    """The net with int8/int4 matrices, from the cached quantized form (made on the first load)."""
    from safetensors.torch import load_file, save_file

    path = quantized_path(directory, fmt)
    state: dict[str, torch.Tensor] | None = None
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as handle:
                tied = (handle.metadata() or {}).get("tie_embeddings") == "1"
            state = load_file(str(path))
            c = dataclasses.replace(c, tie_embeddings=tied)
        except Exception:  # a damaged cache file is rebuilt, not fatal
            state = None
    if state is None:
        c, floats = _float_state(c, directory)
        state = {}
        for key in list(floats):
            value = floats.pop(key)
            module = key.removesuffix(".weight")
            if key.endswith(".weight") and (module.split(".")[-1] in QUANTIZED or module == "lm_head"):
                # The head (tied: also the embeddings) stays int8 under int4: int4 there costs +6 % perplexity.
                matrix = quantize(value, "int8" if module == "lm_head" else fmt)
                state |= {f"{module}.data": matrix.data, f"{module}.scale": matrix.scale,
                          f"{module}.minimum": matrix.minimum}
            else:
                state[key] = value.float().contiguous()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}")  # renamed into place: readers never see half
        save_file(state, str(partial), metadata={"tie_embeddings": "1" if c.tie_embeddings else "0", "format": fmt})
        os.replace(partial, path)
    return quantized_net(c, state)


def quantized_net(c: LlamaConfig, state: dict[str, torch.Tensor]) -> LlamaNet:
    """A LlamaNet over a quantized state dict (`<module>.data/.scale/.minimum` for each matrix), with its C++
    decoder built; tensors are shared, not copied."""
    with torch.device("meta"):
        net = LlamaNet(c)

    def matrix(module: str) -> QuantizedMatrix:
        return QuantizedMatrix(state[f"{module}.data"], state[f"{module}.scale"], state[f"{module}.minimum"])

    layers: list[dict[str, QuantLinear]] = []
    for i, block in enumerate(net.blocks):
        layers.append({name: QuantLinear(matrix(f"blocks.{i}.{name}"), state.get(f"blocks.{i}.{name}.bias"))
                       for name in QUANTIZED})
        for name, module in layers[-1].items():
            setattr(block, name, module)
    head = QuantLinear(matrix("lm_head"))
    net.lm_head = head  # type: ignore[assignment]  # nn.Linear's interface, quantized storage
    rest = {k: v for k, v in state.items() if not k.endswith((".data", ".scale", ".minimum"))}
    net.load_state_dict(net.state_dict() | rest, assign=True, strict=True)
    engine = kernels().Engine(c.hidden_size, c.intermediate_size, c.num_heads, c.num_kv_heads, c.head_dim,
                              c.rms_norm_eps)
    for block, modules in zip(net.blocks, layers, strict=True):
        qkv = modules["qkv"]
        bias = qkv.bias if qkv.bias is not None else torch.empty(0)
        engine.add_layer(block.input_norm, block.post_norm, qkv.matrix.parts, bias, modules["o"].matrix.parts,
                         modules["gate_up"].matrix.parts, modules["down"].matrix.parts)
    engine.set_head(net.norm, head.matrix.parts)
    net.engine = engine
    return net.eval().requires_grad_(False)
