"""The project's GPT: a decoder-only transformer one can read in a sitting.

Pre-LayerNorm blocks, causal attention through `scaled_dot_product_attention` (flash kernels on CUDA),
a GELU MLP, tied input/output embeddings, and learned (GPT-2) or rotary positions. The same module
trains (`forward(idx, targets)`), decodes token by token over a preallocated KV cache (`decode`), and
shows its insides (`forward_full`). Parameter names follow nanoGPT/GPT-2, so GPT-2 weights map onto it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from llm_playground.errors import ModelLoadError
from llm_playground.model.attention import (
    RopeTables,
    apply_rope,
    attention_with_weights,
    create_causal_mask,
    rope_inv_freq,
)
from llm_playground.model.head_loss import linear_cross_entropy
from llm_playground.model.kvcache import TensorCache

MODEL_TYPE = "llmp-gpt"


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    bias: bool = False
    positions: Literal["learned", "rotary"] = "learned"
    rope_theta: float = 10000.0
    gelu: Literal["none", "tanh"] = "none"  # "tanh" is GPT-2's gelu_new
    layer_norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ModelLoadError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}",
                                 "choose n_embd divisible by n_head")
        if self.positions not in ("learned", "rotary"):
            raise ModelLoadError(f"unknown positions {self.positions!r}", "use learned or rotary")
        if self.positions == "rotary" and (self.n_embd // self.n_head) % 2:
            raise ModelLoadError("rotary positions need an even head size", "change n_embd or n_head")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": MODEL_TYPE, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> GPTConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in raw.items() if k in names})
        except TypeError as exc:
            raise ModelLoadError(f"incomplete GPT config: {exc}", "train or export the model again") from None


class GPTCache(TensorCache):
    def __init__(self, config: GPTConfig, capacity: int, dtype: torch.dtype, device: torch.device | str = "cpu",
                 batch: int = 1) -> None:
        super().__init__(config.n_layer, batch, config.n_head, capacity, config.head_dim, dtype, device)


class CausalSelfAttention(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.c = c
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)
        self.resid_dropout = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                cache: GPTCache | None = None, layer: int = 0,
                attention_out: list[torch.Tensor] | None = None) -> torch.Tensor:
        c = self.c
        batch, length, _ = x.shape
        q, k, v = (t.view(batch, length, c.n_head, c.head_dim).transpose(1, 2)  # (B, nh, T, hs)
                   for t in self.c_attn(x).split(c.n_embd, dim=2))
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        start = 0
        if cache is not None:
            start, end = cache.length, cache.length + length
            cache.k[layer, :, :, start:end], cache.v[layer, :, :, start:end] = k, v
            k, v = cache.k[layer, :, :, :end], cache.v[layer, :, :, :end]  # (B, nh, S, hs)
        if attention_out is not None:
            y, weights = attention_with_weights(q, k, v)
            attention_out.append(weights)
        elif start == 0:
            dropout = c.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=length > 1)
        elif length == 1:
            y = F.scaled_dot_product_attention(q, k, v)  # one new query sees every cached position
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=create_causal_mask(length, start, x.device))
        y = y.transpose(1, 2).reshape(batch, length, c.n_embd)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.gelu = nn.GELU(approximate=c.gelu)
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_eps, bias=c.bias)
        self.attn = CausalSelfAttention(c)
        self.ln_2 = nn.LayerNorm(c.n_embd, eps=c.layer_norm_eps, bias=c.bias)
        self.mlp = MLP(c)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None,
                cache: GPTCache | None = None, layer: int = 0,
                attention_out: list[torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), rope, cache, layer, attention_out)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    inv_freq: torch.Tensor  # a buffer (rotary frequencies), declared for the type checker

    def __init__(self, c: GPTConfig) -> None:
        super().__init__()
        self.config = c
        # `_weight` skips nn.Embedding's own init (ours below does it): on the meta device, when loading, that
        # init would import torch's reference implementations, ~1 s of start-up.
        self.wte = nn.Embedding(c.vocab_size, c.n_embd, _weight=torch.empty(c.vocab_size, c.n_embd))
        self.wpe = (nn.Embedding(c.block_size, c.n_embd, _weight=torch.empty(c.block_size, c.n_embd))
                    if c.positions == "learned" else None)
        self.drop = nn.Dropout(c.dropout)
        self.h = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd, eps=c.layer_norm_eps, bias=c.bias)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one matrix reads tokens in and writes logits out
        if c.positions == "rotary":
            # A non-persistent buffer, never loaded: it follows the module's .to(device).
            self.register_buffer("inv_freq", rope_inv_freq(c.head_dim, c.rope_theta), persistent=False)
        self._rope_tables = RopeTables(min_rows=c.block_size)
        if self.wte.weight.is_meta:
            return  # loading: the weights come from the file
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2's scaled init of the residual projections
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied matrix counts once

    def _rope(self, start: int, end: int, dtype: torch.dtype, device: torch.device
              ) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.wpe is not None:
            return None
        return self._rope_tables.get(self.inv_freq, start, end, dtype, device)

    def _embed(self, idx: torch.Tensor, start: int) -> torch.Tensor:
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(start, start + idx.shape[1], device=idx.device))
        return self.drop(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Training and evaluation. Without targets: the logits of every position, (batch, T, vocab), and
        None. With targets: None and the mean loss, through the fused head + loss (the logits are never
        materialised whole, see head_loss.py)."""
        x = self._embed(idx, 0)
        rope = self._rope(0, idx.shape[1], x.dtype, x.device)
        for block in self.h:
            x = block(x, rope)
        x = self.ln_f(x)
        if targets is None:
            return self.lm_head(x), None
        return None, linear_cross_entropy(x.reshape(-1, x.size(-1)), self.lm_head.weight, targets.reshape(-1))

    def decode(self, idx: torch.Tensor, cache: GPTCache) -> torch.Tensor:
        """Append `idx` (batch, new tokens) to the cache; logits of the last position, (batch, vocab)."""
        start, end = cache.length, cache.length + idx.shape[1]
        cache.reserve(end)
        x = self._embed(idx, start)
        rope = self._rope(start, end, x.dtype, x.device)
        for layer, block in enumerate(self.h):
            x = block(x, rope, cache, layer)
        cache.length = end
        return self.lm_head(self.ln_f(x[:, -1]))

    def forward_full(self, idx: torch.Tensor, attentions: bool, hidden_states: bool
                     ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Logits of every position, plus per-layer attention weights and hidden states, in one pass."""
        x = self._embed(idx, 0)
        rope = self._rope(0, idx.shape[1], x.dtype, x.device)
        weights: list[torch.Tensor] = []
        states = [x] if hidden_states else []
        for block in self.h:
            x = block(x, rope, attention_out=weights if attentions else None)
            if hidden_states:
                states.append(x)
        x = self.ln_f(x)
        if hidden_states:
            states[-1] = x  # as transformers reports GPT-2's: the last hidden state after the final norm
        return self.lm_head(x), weights, states

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Matrices decay; biases, norms (and nothing else) do not."""
        params = [p for p in self.parameters() if p.requires_grad]
        return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
