"""The prepared token arrays and random batches drawn from them.

Batches are a function of (seed, rank, step, micro-step): the data position a checkpoint needs is the
step, resuming draws exactly the batches an uninterrupted run would have, and each DDP rank reads
different windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from llm_playground.data.prepared import Prepared
from llm_playground.data.prepared import load_prepared as _load_prepared
from llm_playground.errors import InputError, InvalidParameter
from llm_playground.workspace import Workspace

SPLITS = ("train", "val")


def missing_stage(workspace: Workspace) -> InputError | None:
    """The first build stage whose output is missing, as the error that names the command making it."""
    if workspace.meta_path.is_file() and workspace.train_bin.is_file() and workspace.val_bin.is_file():
        return None
    everything = ", or llmp pipeline for every missing stage"
    if not workspace.corpus_path.is_file():
        return InputError(f"no corpus at {workspace.relative(workspace.corpus_path)} (stage: collect), "
                          "so no prepared data", "run: llmp data collect" + everything)
    if not workspace.tokenizer_path.is_file():
        return InputError(f"no tokenizer at {workspace.relative(workspace.tokenizer_path)} (stage: tokenizer), "
                          "so no prepared data", "run: llmp tokenizer train" + everything)
    return InputError(f"no prepared data in {workspace.relative(workspace.processed_dir)} (stage: prepare)",
                      "run: llmp data prepare" + everything)


def load_prepared(workspace: Workspace) -> Prepared:
    """The prepare stage's arrays (memory maps) and meta, after naming the first missing stage if any."""
    error = missing_stage(workspace)
    if error is not None:
        raise error
    return _load_prepared(workspace)  # checks sizes against meta.json and staleness against the tokenizer


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
