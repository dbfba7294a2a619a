"""The prepared token arrays and random batches drawn from them.

Batches are a function of (seed, rank, step, micro-step): the data position a checkpoint needs is the
step, resuming draws exactly the batches an uninterrupted run would have, and each DDP rank reads
different windows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llm_playground.errors import InputError, InvalidParameter
from llm_playground.workspace import Workspace

DTYPES = {"uint16": np.uint16, "uint32": np.uint32}
SPLITS = ("train", "val")


@dataclass(frozen=True)
class Prepared:
    train: np.ndarray
    val: np.ndarray
    meta: dict[str, Any]


def missing_stage(workspace: Workspace) -> InputError | None:
    """The first build stage whose output is missing, as the error that names the command making it."""
    if not workspace.meta_path.is_file() or not workspace.train_bin.is_file() or not workspace.val_bin.is_file():
        if not workspace.corpus_path.is_file():
            return InputError(f"no corpus at {workspace.corpus_path} (stage: collect), so no prepared data",
                              "run: llmp data collect, or llmp pipeline for every missing stage")
        if not workspace.tokenizer_path.is_file():
            return InputError(f"no tokenizer at {workspace.tokenizer_path} (stage: tokenizer), so no prepared data",
                              "run: llmp tokenizer train, or llmp pipeline for every missing stage")
        return InputError(f"no prepared data in {workspace.processed_dir} (stage: prepare)",
                          "run: llmp data prepare, or llmp pipeline for every missing stage")
    return None


def load_prepared(workspace: Workspace) -> Prepared:
    """train.bin, val.bin and meta.json as the prepare stage writes them (read-only memory maps)."""
    error = missing_stage(workspace)
    if error is not None:
        raise error
    try:
        meta = json.loads(workspace.meta_path.read_text(encoding="utf-8"))
        dtype = DTYPES[meta["dtype"]]
        train = np.memmap(workspace.train_bin, dtype=dtype, mode="r")
        val = np.memmap(workspace.val_bin, dtype=dtype, mode="r")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"the prepared data in {workspace.processed_dir} is unreadable ({exc!r})",
                         "run: llmp data prepare") from None
    return Prepared(train, val, meta)


def tokenizer_path(workspace: Workspace, meta: dict[str, Any]) -> Path:
    path = workspace.root / meta.get("tokenizer", "models/tokenizer.model")
    if not path.is_file():
        raise InputError(f"the tokenizer the data was prepared with ({path}) is missing (stage: tokenizer)",
                         "run: llmp tokenizer train, then llmp data prepare")
    return path


class Batches:
    def __init__(self, prepared: Prepared, block_size: int, batch_size: int, seed: int, rank: int = 0) -> None:
        for split, data in (("train", prepared.train), ("val", prepared.val)):
            if len(data) <= block_size + 1:
                raise InvalidParameter(f"block_size {block_size} is larger than the {split} data ({len(data)} tokens)",
                                       f"use --set block_size={max(2, len(data) // 4)} or collect more text")
        self.data = {"train": prepared.train, "val": prepared.val}
        self.block_size, self.batch_size, self.seed, self.rank = block_size, batch_size, seed, rank
        self.offsets = np.arange(block_size + 1)

    def get(self, split: str, *key: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch for `key` (step, micro-step for training; eval round, index for evaluation)."""
        data = self.data[split]
        rng = np.random.default_rng([self.seed, self.rank, SPLITS.index(split), *key])
        starts = rng.integers(0, len(data) - self.block_size, self.batch_size)
        windows = torch.from_numpy(data[starts[:, None] + self.offsets].astype(np.int64))
        return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()
