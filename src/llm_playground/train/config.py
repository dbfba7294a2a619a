"""What a training run is: presets, a YAML file and `--set key=value`, validated once by pydantic.

Precedence: preset < YAML file < `--set`. Unknown keys and wrong types are one-line errors. The model's
vocabulary size is not a setting: it comes from the prepared data's `meta.json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llm_playground.errors import InputError, InvalidParameter


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # model
    n_layer: int = Field(4, ge=1)
    n_head: int = Field(4, ge=1)
    n_embd: int = Field(128, ge=8)
    block_size: int = Field(64, ge=2, description="context length in tokens")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    bias: bool = False
    positions: Literal["learned", "rotary"] = "learned"
    # optimisation
    batch_size: int = Field(12, ge=1, description="sequences per micro-batch (per process)")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimizer step (across all processes)")
    max_iters: int = Field(2000, ge=1)
    learning_rate: float = Field(1e-3, gt=0)
    min_lr: float = Field(1e-4, ge=0)
    warmup_iters: int = Field(100, ge=0)
    lr_decay_iters: int | None = Field(None, ge=1, description="default: max_iters")
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = Field(0.9, gt=0, lt=1)
    beta2: float = Field(0.99, gt=0, lt=1)
    grad_clip: float = Field(1.0, ge=0, description="0 disables clipping")
    # evaluation, logging, checkpoints
    eval_interval: int = Field(250, ge=1)
    eval_iters: int = Field(20, ge=1)
    log_interval: int = Field(10, ge=1)
    sample_tokens: int = Field(100, ge=0, description="tokens generated at each evaluation (0: none)")
    sample_prompt: str = "\n"
    seed: int = Field(1337, ge=0)
    # system
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="auto: bf16 autocast where the GPU or CPU computes bf16 natively, else float32")
    compile: bool = False
    threads: int | None = Field(None, ge=1, description="torch threads on CPU (default: LLMP_THREADS or half)")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if self.positions == "rotary" and (self.n_embd // self.n_head) % 2:
            raise ValueError("rotary positions need an even head size (n_embd / n_head)")
        if self.min_lr > self.learning_rate:
            raise ValueError(f"min_lr ({self.min_lr}) exceeds learning_rate ({self.learning_rate})")
        return self

    @property
    def decay_iters(self) -> int:
        return self.lr_decay_iters or self.max_iters


PRESETS: dict[str, dict[str, Any]] = {
    # nanoGPT's CPU configuration (4 layers, 4 heads, 128 wide, 12 × 64 tokens, 2,000 iterations): trains on
    # the bundled Shakespeare (4k BPE vocabulary) on 2 shared cores in under 10 minutes.
    "tiny": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "batch_size": 12, "max_iters": 2000,
             "learning_rate": 1e-3, "min_lr": 1e-4, "warmup_iters": 100, "dropout": 0.0, "eval_interval": 250,
             "eval_iters": 20},
    # nanoGPT's shakespeare-char GPU configuration.
    "small": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "batch_size": 64, "max_iters": 5000,
              "learning_rate": 1e-3, "min_lr": 1e-4, "warmup_iters": 100, "dropout": 0.2, "eval_interval": 250,
              "eval_iters": 200},
    # GPT-2 small (124M): nanoGPT's train_gpt2 settings; ~0.5M tokens a step through accumulation.
    "gpt2-124m": {"n_layer": 12, "n_head": 12, "n_embd": 768, "block_size": 1024, "batch_size": 12,
                  "grad_accum": 40, "max_iters": 600000, "learning_rate": 6e-4, "min_lr": 6e-5,
                  "warmup_iters": 2000, "beta2": 0.95, "weight_decay": 0.1, "dropout": 0.0, "eval_interval": 1000,
                  "eval_iters": 200, "compile": True},
}


def _one_line(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "config"
        message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        got = "" if error["type"] == "extra_forbidden" else f" (got {error.get('input')!r})"
        parts.append(f"{where}: {message}{got}")
    return "; ".join(parts)


def _validated(values: dict[str, Any]) -> TrainConfig:
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        raise InvalidParameter(f"bad training config: {_one_line(exc)}",
                               f"settings are: {', '.join(TrainConfig.model_fields)}") from None


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`key=value` strings; values are read as YAML scalars (`3`, `1e-3`, `true`, `rotary`)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidParameter(f"--set {pair!r} is not key=value", "e.g. --set max_iters=500")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        values[key.strip()] = raw if isinstance(value, (dict, list)) else value
    return values


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read config {path}: {exc.strerror}", "give an existing YAML file") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}", "fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path} must be a mapping of settings", "write one `key: value` per line")
    return data


def build_config(preset: str | None = None, file: Path | None = None, overrides: list[str] | None = None,
                 base: dict[str, Any] | None = None) -> TrainConfig:
    """`base` (a resumed run's saved settings) < preset < YAML file < `--set`."""
    values: dict[str, Any] = dict(base or {})
    if preset is not None:
        if preset not in PRESETS:
            raise InvalidParameter(f"unknown preset {preset!r}", f"use one of: {', '.join(PRESETS)}")
        values |= PRESETS[preset]
    if file is not None:
        values |= read_yaml(file)
    values |= parse_overrides(overrides or [])
    return _validated(values)


def dump_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(config.model_dump(), sort_keys=False, allow_unicode=True)


def load_saved(path: Path) -> TrainConfig:
    return _validated(read_yaml(path))
