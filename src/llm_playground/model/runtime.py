"""Torch's thread count and training precision, chosen deliberately.

On small shared machines torch's default (one thread per core) collapses when anything else runs:
measured on 2 cores, decoding fell from 15 to 2–3 tokens/s under load with 2 threads while 1 thread
kept its speed. The default is therefore half the cores (at least 1), overridable with `--threads`
or `LLMP_THREADS`.

bf16 autocast pays only where the hardware computes in bf16: on CPUs without AVX512-BF16 or AMX it is
emulated and slower than float32.
"""

from __future__ import annotations

import os

import torch

from llm_playground.errors import InvalidParameter


def default_threads() -> int:
    env = os.environ.get("LLMP_THREADS")
    if env:
        return parse_threads(env)
    return max(1, (os.cpu_count() or 2) // 2)


def parse_threads(value: str | int) -> int:
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        raise InvalidParameter(f"threads must be a positive integer, got {value!r}", "use --threads 1 or more")
    return threads


def configure_threads(threads: int | None = None) -> int:
    threads = default_threads() if threads is None else parse_threads(threads)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls run natively here: a CUDA GPU with bf16, or a CPU with AVX512-BF16 or AMX
    (measured on an AVX512-BF16 EPYC: the tiny training preset 1.4x faster under bf16 autocast)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # private probes: a torch without them gets float32
        return False
