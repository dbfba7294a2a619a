"""Torch's thread count, chosen deliberately.

On small shared machines torch's default (one thread per core) collapses when anything else runs:
measured on 2 cores, decoding fell from 15 to 2–3 tokens/s under load with 2 threads while 1 thread
kept its speed. The default is therefore half the cores (at least 1), overridable with `--threads`
or `LLMP_THREADS`.
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
