"""Our GPT as a `LanguageModel` (and `Introspectable`), and its on-disk format.

A GPT directory holds `config.json` (the `GPTConfig` fields, `model_type: llmp-gpt`, and the tokenizer's
path relative to the directory) and `model.safetensors`. A run directory (`runs/NAME`) holds such
directories under `checkpoints/{best,last}`; loading a run picks `best`, else `last`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from llm_playground.errors import ContextOverflow, ModelLoadError, ModelNotFound
from llm_playground.model.base import FullForward, ModelInfo, describe_dtype, full_forward_from_torch
from llm_playground.model.gpt import GPT, MODEL_TYPE, GPTCache, GPTConfig
from llm_playground.tokenizer import load_tokenizer
from llm_playground.tokenizer.base import Tokenizer
from llm_playground.workspace import CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS, RunDir

log = logging.getLogger(__name__)

CONFIG, WEIGHTS = CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS


def is_gpt_directory(path: Path) -> bool:
    config = path / CONFIG
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (OSError, ValueError):
        return False


def is_run_directory(path: Path) -> bool:
    return RunDir(path).is_run()


def checkpoint_for(run: Path) -> Path:
    """The checkpoint a run is used through: `best`, else `last` (with a warning when `best` is damaged)."""
    damaged = []
    for name, candidate in RunDir(run).complete_checkpoints():
        if not weights_complete(candidate / WEIGHTS):
            damaged.append(name)
            continue
        if damaged:
            log.warning("%s is truncated or corrupt: using %s instead", RunDir(run).checkpoint(damaged[0]), name)
        return candidate
    if damaged:
        raise ModelLoadError(f"the checkpoints of {run} are truncated or corrupt ({', '.join(damaged)})",
                             f"train again: llmp train --out {run}")
    raise ModelNotFound(f"{run} has no complete checkpoint yet", f"train it: llmp train --out {run}")


def weights_complete(path: Path) -> bool:
    """Whether a safetensors file holds all the bytes its header promises (read without loading it)."""
    try:
        with path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            if not 0 < size < 100_000_000:
                return False
            header = json.loads(handle.read(size))
        end = max((int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"), default=0)
        return path.stat().st_size >= 8 + size + end
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):  # AttributeError: not an object
        return False


def state_for_saving(net: GPT) -> dict[str, torch.Tensor]:
    # The LM head is the embedding matrix (tied); safetensors refuses shared storage, so it is stored once.
    return {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items() if k != "lm_head.weight"}


def save_gpt(directory: Path, net: GPT, tokenizer_path: Path, extra: dict[str, Any] | None = None) -> None:
    """Write `config.json` and `model.safetensors` into `directory` (the caller makes it atomic)."""
    directory.mkdir(parents=True, exist_ok=True)
    save_file(state_for_saving(net), str(directory / WEIGHTS), metadata={"format": "pt"})
    config = net.config.to_dict() | {"tokenizer": _relative(tokenizer_path, directory)} | (extra or {})
    (directory / CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")


def _relative(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())


def read_config(directory: Path) -> tuple[GPTConfig, dict[str, Any]]:
    try:
        raw = json.loads((directory / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {directory / CONFIG}: {exc}",
                             "the checkpoint is damaged: use the other one or train again") from None
    return GPTConfig.from_dict(raw), raw


def load_net(directory: Path, device: torch.device | str = "cpu") -> tuple[GPT, dict[str, Any]]:
    config, raw = read_config(directory)
    try:
        state = load_file(str(directory / WEIGHTS), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{directory / WEIGHTS} is truncated or corrupt ({exc})",
                             "use the other checkpoint (best/last) or train again") from None
    with torch.device("meta"):
        net = GPT(config)
    if "wte.weight" in state:  # tied; without it the strict load below names what is missing
        state["lm_head.weight"] = state["wte.weight"]
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, TypeError) as exc:
        raise ModelLoadError(f"{directory / WEIGHTS} does not match its config: {exc}",
                             "use the other checkpoint or train again") from None
    net.lm_head.weight = net.wte.weight
    return net, raw


def tokenizer_for(directory: Path, raw: dict[str, Any]) -> Tokenizer:
    if "tokenizer" not in raw:
        raise ModelLoadError(f"{directory / CONFIG} names no tokenizer", "train or export the model again")
    path = (directory / raw["tokenizer"]).resolve()
    if not path.exists():
        raise ModelLoadError(f"the tokenizer of {directory} ({path}) is missing",
                             "restore it, or train the model again")
    return load_tokenizer(path)


def gpt_tokenizer(path: Path) -> Tokenizer | None:
    """The tokenizer of one of our GPT directories or runs, read without the weights; None for other paths."""
    if path.is_dir() and is_run_directory(path):
        path = checkpoint_for(path)
    if not is_gpt_directory(path):
        return None
    return tokenizer_for(path, read_config(path)[1])


class GPTModel:
    """A `LanguageModel` over a `GPT` module: the trainer's live model, or one loaded from disk."""

    def __init__(self, net: GPT, tokenizer: Tokenizer, name: str = "gpt", location: str = "",
                 dtype: torch.dtype = torch.float32) -> None:
        self.net = net
        self.tokenizer = tokenizer
        self.dtype = dtype
        self.config = net.config
        self.info = ModelInfo(name=name, backend="native", architecture=MODEL_TYPE,
                              parameters=net.num_parameters(), context_length=net.config.block_size,
                              vocab_size=net.config.vocab_size, dtype=describe_dtype(dtype), location=location)

    @property
    def context_length(self) -> int:
        return self.config.block_size

    @property
    def device(self) -> torch.device:
        return self.net.wte.weight.device

    def new_cache(self, capacity: int | None = None) -> GPTCache:
        return GPTCache(self.config, min(capacity or 256, self.context_length), self.net.wte.weight.dtype,
                        self.device)

    @torch.inference_mode()
    def forward(self, ids: Sequence[int], cache: GPTCache) -> np.ndarray:
        if cache.length + len(ids) > self.context_length:
            raise ContextOverflow(f"{cache.length + len(ids)} tokens do not fit the context of "
                                  f"{self.context_length}", "use a shorter prompt")
        tensor = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=self.device).unsqueeze(0)
        with self._eval_mode():
            return self.net.decode(tensor, cache)[0].float().cpu().numpy()

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Dropout off for the pass. A loaded model is in eval mode already, and switching walks every module
        (~0.1 ms a token, a third of the tiny GPT's decode step): only the trainer's live model switches."""
        if not self.net.training:
            yield
            return
        self.net.eval()
        try:
            yield
        finally:
            self.net.train()

    def embedding_matrix(self) -> np.ndarray:
        matrix = self.net.wte.weight.detach().float().cpu().numpy()
        matrix.flags.writeable = False
        return matrix

    @torch.inference_mode()
    def forward_full(self, ids: Sequence[int], attentions: bool = True, hidden_states: bool = True) -> FullForward:
        def run(tensor: torch.Tensor) -> tuple:
            with self._eval_mode():
                return self.net.forward_full(tensor.to(self.device), attentions, hidden_states)

        return full_forward_from_torch(ids, self.context_length, run)


def load_gpt(path: Path, name: str | None = None, dtype: torch.dtype = torch.float32) -> GPTModel:
    """A run directory (its best, else last, checkpoint) or a GPT directory → a `GPTModel`."""
    path = Path(path)
    directory = checkpoint_for(path) if is_run_directory(path) else path
    net, raw = load_net(directory)
    net = net.to(dtype).eval().requires_grad_(False)
    label = name or (path.name if is_run_directory(path) else directory.name)
    return GPTModel(net, tokenizer_for(directory, raw), name=label, location=str(directory), dtype=dtype)
