"""Distributed data parallel under `torchrun`: one process per GPU (NCCL) or per CPU worker (gloo).

`torchrun` sets RANK, LOCAL_RANK and WORLD_SIZE; without them training runs in one process. Only rank
0 writes (checkpoints, metrics, charts) and evaluates; every rank draws its own batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_type: str) -> Distributed:
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return Distributed()
    env = Distributed(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), int(os.environ["WORLD_SIZE"]))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    if device_type == "cuda":
        torch.cuda.set_device(env.local_rank)
    return env


def gather(value: float, env: Distributed) -> list[float]:
    """A number from every rank, in rank order (each rank must call it at the same point)."""
    if not env.enabled:
        return [value]
    device = f"cuda:{env.local_rank}" if dist.get_backend() == "nccl" else "cpu"  # NCCL reduces GPU tensors only
    parts = [torch.zeros(1, dtype=torch.float64, device=device) for _ in range(env.world_size)]
    dist.all_gather(parts, torch.tensor([value], dtype=torch.float64, device=device))
    return [float(p.item()) for p in parts]


def barrier(env: Distributed) -> None:
    if env.enabled:
        dist.barrier()


def teardown(env: Distributed) -> None:
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()
