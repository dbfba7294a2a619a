"""The KV cache of our torch decoders (the native Llama backend and our GPT): one tensor pair for all layers."""

from __future__ import annotations

from typing import Self

import torch


class TensorCache:
    """K and V of every layer, (layers, batch, heads, capacity, head_dim), grown by doubling."""

    def __init__(self, layers: int, batch: int, heads: int, capacity: int, head_dim: int, dtype: torch.dtype,
                 device: torch.device | str = "cpu") -> None:
        shape = (layers, batch, heads, max(capacity, 1), head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    def reserve(self, needed: int) -> None:
        if needed <= self.capacity:
            return
        grown = max(needed, 2 * self.capacity)
        for name in ("k", "v"):
            old = getattr(self, name)
            new = old.new_zeros(old.shape[:3] + (grown,) + old.shape[4:])
            new[:, :, :, : self.length] = old[:, :, :, : self.length]
            setattr(self, name, new)

    def copy(self) -> Self:
        clone = object.__new__(type(self))
        clone.k, clone.v, clone.length = self.k.clone(), self.v.clone(), self.length
        return clone
