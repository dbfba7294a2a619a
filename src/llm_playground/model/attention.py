"""The attention maths our torch decoders share (model/gpt.py, model/llama.py): rotary embeddings, their
cos/sin tables, the causal mask, and attention with its weights materialised (for the explorers).

Shapes: B batch, nh heads (query or KV), T new positions, S all positions so far (cache + new),
hs head size. After litgpt's `apply_rope` and mlx-lm's `create_causal_mask`.
"""

from __future__ import annotations

import torch


def rope_inv_freq(head_dim: int, theta: float) -> torch.Tensor:
    """The rotary frequencies, (hs / 2,) float64, on the CPU even under the meta device (loading): computing on
    meta would import torch's reference implementations, ~1.5 s of start-up."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float64, device="cpu") / head_dim
    return 1.0 / (theta**exponents)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate query or key vectors by their positions' angles.

    x: (B, nh, T, hs); cos, sin: (T, hs), or (B, 1, T, hs) when each sequence has its own positions.
    Returns (B, nh, T, hs) in x's dtype (the tables are made in it).
    """
    if x.dim() != 4:
        raise ValueError(f"apply_rope: x must be (B, nh, T, hs), got shape {tuple(x.shape)}")
    if cos.shape != sin.shape or cos.dim() not in (2, 4):
        raise ValueError(f"apply_rope: cos and sin must both be (T, hs) or (B, 1, T, hs), got "
                         f"{tuple(cos.shape)} and {tuple(sin.shape)}")
    if cos.shape[-2:] != x.shape[-2:] or x.shape[-1] % 2:
        raise ValueError(f"apply_rope: tables {tuple(cos.shape)} do not fit x {tuple(x.shape)} "
                         "(need the same T and an even hs)")
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)  # (B, nh, T, hs)
    return x * cos + rotated * sin


class RopeTables:
    """cos/sin tables, (rows, hs) each, one pair per (dtype, device), grown by doubling.

    Safe to read from several threads (the web app and the API server run forwards side by side): a pair is
    built whole and stored in one dict assignment, so no reader sees a new cos with an old sin, and a race
    only builds the same pair twice.
    """

    def __init__(self, min_rows: int = 256) -> None:
        self.min_rows = min_rows
        self._tables: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def get(self, inv_freq: torch.Tensor, start: int, end: int, dtype: torch.dtype, device: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows of positions start..end-1: cos, sin, (end - start, hs) each."""
        cos, sin = self.table(inv_freq, end, dtype, device)
        return cos[start:end], sin[start:end]

    def table(self, inv_freq: torch.Tensor, end: int, dtype: torch.dtype, device: torch.device
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole tables, at least `end` rows: cos, sin, (rows, hs) each."""
        key = (dtype, torch.device(device))
        pair = self._tables.get(key)
        if pair is None or pair[0].shape[0] < end:
            rows = max(end, 2 * pair[0].shape[0] if pair is not None else 0, self.min_rows)
            positions = torch.arange(rows, dtype=torch.float64, device=device)
            angles = torch.outer(positions, inv_freq.to(device=device, dtype=torch.float64))  # (rows, hs / 2)
            angles = torch.cat((angles, angles), dim=-1)  # (rows, hs)
            pair = (angles.cos().to(dtype), angles.sin().to(dtype))
            self._tables[key] = pair
        return pair


def create_causal_mask(length: int, offset: int = 0, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, S) bool, S = offset + T: True where new position `offset + i` may attend to position j (j <= it)."""
    rows = torch.arange(offset, offset + length, device=device).unsqueeze(1)  # (T, 1)
    return torch.arange(offset + length, device=device).unsqueeze(0) <= rows


def attention_with_weights(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal attention that keeps the weights, which the fused SDPA kernels never materialise.

    q: (B, nh, T, hs); k, v: (B, nh, S, hs) with the same heads as q (GQA callers expand them first).
    Returns the output (B, nh, T, hs) and the weights (B, nh, T, S), softmax taken in float32.
    """
    if k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention_with_weights: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} "
                         "need the same batch, heads and head size")
    length, total = q.shape[2], k.shape[2]
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5  # (B, nh, T, S)
    scores = scores.masked_fill(~create_causal_mask(length, total - length, q.device), float("-inf"))
    weights = scores.float().softmax(dim=-1).to(q.dtype)
    return weights @ v, weights
