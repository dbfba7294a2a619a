"""The training loop: AdamW, warmup + cosine schedule, gradient accumulation and clipping, bf16 autocast
where the hardware computes bf16 natively, optional `torch.compile`, DDP, evaluation with samples,
checkpoints, metrics, and Ctrl-C that saves before it exits.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from llm_playground.errors import InputError
from llm_playground.generate.loop import complete
from llm_playground.generate.params import SamplingParams
from llm_playground.model.gpt import GPT, GPTConfig
from llm_playground.model.gpt_model import GPTModel
from llm_playground.model.runtime import configure_threads, native_bf16
from llm_playground.tokenizer import load_tokenizer
from llm_playground.train import ddp
from llm_playground.train.checkpoint import copy_checkpoint, load_checkpoint, restore_rng, rng_state, save_checkpoint
from llm_playground.train.config import TrainConfig, dump_yaml
from llm_playground.train.data import SPLITS, Batches, load_prepared, tokenizer_path
from llm_playground.train.metrics import MetricsLog, write_loss_chart
from llm_playground.train.progress import TrainProgress
from llm_playground.train.schedule import learning_rate
from llm_playground.workspace import CheckpointKind, RunDir, Workspace, atomic_write_text

EVAL_ROUND = 2**40  # the batch key of evaluation batches: never a training step, same batches every time


@dataclass
class RunResult:
    run_dir: Path
    step: int
    best_val_loss: float | None
    val_loss: float | None
    interrupted: bool = False
    samples: list[str] = field(default_factory=list)
    tokens_per_s: float = 0.0
    elapsed_s: float = 0.0
    is_main: bool = True  # under DDP, only rank 0 reports


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve_device(config: TrainConfig, env_local_rank: int = 0) -> torch.device:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda was asked for but no CUDA GPU is available", "use --set device=cpu")
    if config.device == "cuda" or (config.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", env_local_rank)
    return torch.device("cpu")


def autocast_for(config: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    dtype = config.dtype
    if dtype == "auto":
        dtype = "bfloat16" if native_bf16(device) else "float32"
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def adamw(groups: list[dict[str, Any]], c: TrainConfig) -> torch.optim.AdamW:
    """Fused AdamW (one kernel per parameter instead of a dozen) where this torch has it for the device."""
    spare = [dict(g, params=list(g["params"])) for g in groups]  # the failed attempt may have altered `groups`
    try:
        return torch.optim.AdamW(groups, lr=c.learning_rate, betas=(c.beta1, c.beta2), fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(spare, lr=c.learning_rate, betas=(c.beta1, c.beta2))


class Trainer:
    def __init__(self, config: TrainConfig, workspace: Workspace, run_dir: Path, resume: bool = False,
                 console: Console | None = None, on_step: Callable[[int], None] | None = None) -> None:
        self.config, self.workspace, self.run_dir, self.resume = config, workspace, Path(run_dir), resume
        self.console = console or Console(stderr=True, highlight=False)
        self.on_step = on_step
        self.rundir = RunDir(self.run_dir)

    # --- setup ----------------------------------------------------------------------------------------------

    def _setup(self) -> None:
        c = self.config
        kind = resolve_device(c).type  # first: a missing GPU is a one-line error before any process group
        if kind == "cpu":
            configure_threads(c.threads)
        self.env = ddp.setup(kind)
        self.device = resolve_device(c, self.env.local_rank)
        self.autocast = autocast_for(c, self.device)
        prepared = load_prepared(self.workspace)
        self.meta = prepared.meta
        self.batches = Batches(prepared, c.block_size, c.batch_size, c.seed, self.env.rank)
        self.tokenizer_file = self.rundir.tokenizer
        if self.resume:
            self._check_resumable()
        elif self.env.is_main:
            if self.rundir.checkpoints_dir.exists():
                raise InputError(f"{self.run_dir} already holds a run",
                                 f"continue it: llmp train --resume --out {self.run_dir}, or choose another --out")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(tokenizer_path(self.workspace, self.meta), self.tokenizer_file)
        ddp.barrier(self.env)
        if self.env.is_main:
            atomic_write_text(self.rundir.config, dump_yaml(c))
        self.tokenizer = load_tokenizer(self.tokenizer_file)
        self.micro_steps = max(1, -(-c.grad_accum // self.env.world_size))  # ceil: at least what was asked

    def _check_resumable(self) -> None:
        if not self.rundir.is_run():
            raise InputError(f"{self.run_dir} has no checkpoints to resume",
                             f"start it: llmp train --out {self.run_dir}")
        expected = self.meta.get("tokenizer_sha256")
        if expected and self.tokenizer_file.is_file() and sha256(self.tokenizer_file) != expected:
            raise InputError(f"the prepared data was made with another tokenizer than {self.run_dir}'s",
                             "resume only on the data the run started with, or start a new run")

    def _build(self) -> None:
        c = self.config
        self.step, self.best_val_loss, self.val_loss = 0, None, None
        self.model_config = GPTConfig(vocab_size=int(self.meta["vocab_size"]), block_size=c.block_size,
                                      n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd, dropout=c.dropout,
                                      bias=c.bias, positions=c.positions)
        torch.manual_seed(c.seed + self.env.rank)
        state: dict[str, Any] | None = None
        if self.resume:
            source = self.rundir.last if self.rundir.last.exists() else self.rundir.best
            net, state = load_checkpoint(source, self.device)
            if net.config != self.model_config:
                raise InputError(f"the checkpoint in {source} is a different model than the config describes",
                                 "only training settings (iterations, rates, intervals) can change on --resume")
            self.step, self.best_val_loss, self.val_loss = state["step"], state["best_val_loss"], state["val_loss"]
            if self.env.is_main:
                self.console.print(f"resuming {self.run_dir} from step {self.step} (checkpoints/{source.name})")
        else:
            net = GPT(self.model_config)
        self.net = net.to(self.device).train().requires_grad_(True)
        self.optimizer = adamw(self.net.optimizer_groups(c.weight_decay), c)
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            restore_rng(state["rng"])
        self.model: Any = torch.compile(self.net) if c.compile else self.net
        self.eval_model = self.model
        if self.env.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.model, device_ids=ids)

    # --- the loop -------------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        self._setup()
        self._build()
        c, env = self.config, self.env
        metrics = None
        if env.is_main:
            metrics = MetricsLog(self.rundir.metrics, self.step if self.resume else None)
        tokens_per_step = c.batch_size * c.block_size * self.micro_steps * env.world_size
        result = RunResult(self.run_dir, self.step, self.best_val_loss, self.val_loss, is_main=env.is_main)
        progress = TrainProgress(self.console, c.max_iters, self.step, enabled=env.is_main)
        started = window_start = time.perf_counter()
        window_steps, eval_seconds, losses = 0, 0.0, torch.zeros((), device=self.device)
        try:
            with progress:
                if self.step == 0 and env.is_main:
                    eval_seconds += self._evaluate(metrics, result, progress)
                while self.step < c.max_iters:
                    losses += self._train_step()
                    self.step += 1
                    window_steps += 1
                    if self.step % c.log_interval == 0 or self.step == c.max_iters:
                        rank_losses = ddp.gather(losses.item() / window_steps, env)
                        loss = sum(rank_losses) / len(rank_losses)
                        seconds = time.perf_counter() - window_start - eval_seconds
                        result.tokens_per_s = tokens_per_step * window_steps / max(seconds, 1e-9)
                        lr = learning_rate(self.step - 1, c)
                        if metrics is not None:
                            metrics.write({"kind": "train", "step": self.step, "loss": loss, "lr": lr,
                                           "tokens_per_s": round(result.tokens_per_s, 1),
                                           "ms_per_step": round(1000 * seconds / window_steps, 2)}
                                          | ({"rank_losses": rank_losses} if env.enabled else {}))
                        progress.update(self.step, loss, lr, result.tokens_per_s)
                        window_start, window_steps, eval_seconds = time.perf_counter(), 0, 0.0
                        losses = torch.zeros((), device=self.device)
                    if env.is_main and (self.step % c.eval_interval == 0 or self.step == c.max_iters):
                        eval_seconds += self._evaluate(metrics, result, progress)
                    if self.on_step is not None:
                        self.on_step(self.step)
        except KeyboardInterrupt:
            result.interrupted = True
            if env.is_main:
                self.console.print(f"interrupted at step {self.step}: saving {self.rundir.last}")
                self._save("last")
        finally:
            if metrics is not None:
                metrics.close()
            ddp.teardown(env)
        if env.is_main:
            write_loss_chart(self.rundir.metrics, self.rundir.loss_chart, f"{self.rundir.name}")
        result.step, result.best_val_loss, result.val_loss = self.step, self.best_val_loss, self.val_loss
        result.elapsed_s = time.perf_counter() - started
        return result

    def _train_step(self) -> torch.Tensor:
        lr = learning_rate(self.step, self.config)
        if self.config.dropout > 0:
            # Dropout's randomness as a function of (seed, rank, step), like the batches: every rank resumes
            # exactly where it was, without gathering RNG states from all ranks into rank 0's checkpoint.
            # (Only dropout draws from torch's RNG here; seeding costs ~0.5 ms, so only when it is used.)
            torch.manual_seed((self.config.seed * 1_000_003 + self.env.rank) * 1_000_003 + self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        total = torch.zeros((), device=self.device)
        for micro in range(self.micro_steps):
            x, y = (t.to(self.device, non_blocking=True) for t in self.batches.get("train", self.step, micro))
            last = micro == self.micro_steps - 1
            no_sync = self.model.no_sync() if self.env.enabled and not last else contextlib.nullcontext()
            with no_sync, self.autocast:
                _, loss = self.model(x, y)
            (loss / self.micro_steps).backward()
            total += loss.detach()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / self.micro_steps

    @torch.no_grad()
    def _estimate(self) -> dict[str, float]:
        self.net.eval()
        out = {}
        for split in SPLITS:
            total = 0.0
            for k in range(self.config.eval_iters):
                x, y = (t.to(self.device) for t in self.batches.get(split, EVAL_ROUND, k))
                with self.autocast:
                    total += self.eval_model(x, y)[1].item()
            out[split] = total / self.config.eval_iters
        self.net.train()
        return out

    def _sample(self) -> str:
        c = self.config
        if c.sample_tokens == 0:
            return ""
        prompt = self.tokenizer.encode(c.sample_prompt) or [self.tokenizer.bos_id or 0]
        model = GPTModel(self.net, self.tokenizer, name=self.run_dir.name)
        params = SamplingParams.create(max_new_tokens=c.sample_tokens, temperature=0.8, top_k=200, seed=c.seed,
                                       ignore_eos=True, context_policy="truncate")
        return c.sample_prompt + complete(model, prompt[-(c.block_size - 1):], params)[0].text

    def _evaluate(self, metrics: MetricsLog | None, result: RunResult, progress: TrainProgress) -> float:
        start = time.perf_counter()
        losses = self._estimate()
        self.val_loss = losses["val"]
        sample = self._sample()
        result.samples.append(sample)
        improved = self.best_val_loss is None or self.val_loss < self.best_val_loss
        if improved:
            self.best_val_loss = self.val_loss
        if metrics is not None:
            metrics.write({"kind": "eval", "step": self.step, "train_loss": losses["train"], "val_loss": losses["val"],
                           "lr": learning_rate(self.step, self.config), "sample": sample})
        progress.report(self.step, losses["train"], losses["val"], sample)
        if self.step > 0:
            self._save("last")
            if improved:
                copy_checkpoint(self.rundir.last, self.rundir.best)
        return time.perf_counter() - start

    def _save(self, name: CheckpointKind) -> None:
        state = {"step": self.step, "best_val_loss": self.best_val_loss, "val_loss": self.val_loss, "rng": rng_state(),
                 "data_position": {"step": self.step, "seed": self.config.seed},
                 "schedule": {"kind": "warmup-cosine", "step": self.step}, "config": self.config.model_dump(),
                 "tokenizer_sha256": sha256(self.tokenizer_file), "world_size": self.env.world_size}
        save_checkpoint(self.rundir.checkpoint(name), self.net, self.tokenizer_file, self.optimizer, state)
