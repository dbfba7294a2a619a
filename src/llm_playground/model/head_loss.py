"""The LM head and the cross-entropy loss in one pass, a chunk of positions at a time.

`F.cross_entropy(h @ W.T, targets)` writes the whole (positions × vocab) logits, reads them back for the
log-softmax, writes its gradient, reads that back for two matmuls. Chunked, the logits of a few hundred
positions stay in cache, the softmax is turned into the gradient in place, and both gradients (of the
hidden states and of the head) are computed in the forward pass, which backward only scales. Measured on
the tiny preset on 2 CPU cores: 10 % faster steps in float32, 15 % under bf16 autocast; identical loss and
gradients to rounding. On CUDA the plain path stays (fused kernels there; not measured with this one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

CHUNK_ELEMENTS = 2**20  # logits per chunk (4 MB in float32): ~256 positions of a 4k vocabulary


def _rows(vocab_size: int) -> int:
    return max(64, CHUNK_ELEMENTS // vocab_size)


def _compute_dtype(h: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    device = h.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        dtype = _compute_dtype(h, weight)
        count, rows = h.shape[0], _rows(weight.shape[0])
        grad_h = torch.empty_like(h)
        grad_weight = torch.zeros_like(weight)
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        with torch.autocast(h.device.type, enabled=False):
            w = weight.to(dtype)
            for start in range(0, count, rows):
                hc, tc = h[start:start + rows].to(dtype), targets[start:start + rows]
                logits = (hc @ w.T).float()
                lse = torch.logsumexp(logits, dim=-1)
                total += (lse - logits.gather(1, tc[:, None]).squeeze(1)).sum()
                grad = logits.sub_(lse[:, None]).exp_()  # the softmax, becoming d(loss)/d(logits) in place
                grad[torch.arange(grad.shape[0], device=grad.device), tc] -= 1.0
                grad = grad.div_(count).to(dtype)
                grad_h[start:start + rows] = grad @ w
                grad_weight.add_(grad.T @ hc)
        ctx.save_for_backward(grad_h, grad_weight)
        return total / count

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        grad_h, grad_weight = ctx.saved_tensors
        return grad_h * grad_output, grad_weight * grad_output, None


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of `h @ weight.T` (positions × vocab logits) against `targets` (positions)."""
    if h.device.type != "cpu":
        return F.cross_entropy(h @ weight.T, targets)
    if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(h, weight, targets)
    dtype = _compute_dtype(h, weight)
    total = torch.zeros((), dtype=torch.float32, device=h.device)
    rows = _rows(weight.shape[0])
    with torch.autocast(h.device.type, enabled=False):
        w = weight.to(dtype)
        for start in range(0, h.shape[0], rows):
            logits = (h[start:start + rows].to(dtype) @ w.T).float()
            total += F.cross_entropy(logits, targets[start:start + rows], reduction="sum")
    return total / h.shape[0]
