"""Checkpoints: `checkpoints/{last,best}/` with `model.safetensors`, `config.json` and `trainer.pt`.

`trainer.pt` holds what resuming needs beyond the weights: the optimizer's state, the step (which is
also the schedule's and the data's position), the best validation loss and the RNG states. Each
checkpoint is built under a temporary name and renamed into place, so an interrupted save leaves the
previous one intact.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from llm_playground.errors import ModelLoadError
from llm_playground.model.gpt import GPT
from llm_playground.model.gpt_model import WEIGHTS, load_net, save_gpt
from llm_playground.workspace import atomic_dir

TRAINER_STATE = "trainer.pt"


def save_checkpoint(directory: Path, net: GPT, tokenizer_path: Path, optimizer: torch.optim.Optimizer,
                    state: dict[str, Any]) -> None:
    with atomic_dir(directory) as tmp:
        save_gpt(tmp, net, tokenizer_path, extra={"step": state["step"], "val_loss": state.get("val_loss")})
        torch.save({**state, "optimizer": optimizer.state_dict()}, tmp / TRAINER_STATE)


def copy_checkpoint(source: Path, target: Path) -> None:
    with atomic_dir(target) as tmp:
        for item in source.iterdir():
            shutil.copy2(item, tmp / item.name)


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(directory: Path, device: torch.device | str = "cpu") -> tuple[GPT, dict[str, Any]]:
    """The network and the trainer state; a damaged file is a one-line `ModelLoadError` naming it."""
    if not (directory / WEIGHTS).is_file() or not (directory / TRAINER_STATE).is_file():
        raise ModelLoadError(f"checkpoint {directory} is incomplete", "resume from the other checkpoint or start over")
    net, _ = load_net(directory, device)
    try:
        state = torch.load(directory / TRAINER_STATE, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError… for damaged files
        raise ModelLoadError(f"{directory / TRAINER_STATE} is truncated or corrupt ({type(exc).__name__})",
                             f"delete {directory} to resume from the other checkpoint, or start over") from None
    return net, state
