"""The learning rate as a pure function of the step: linear warmup, then cosine decay to `min_lr`.

Being a function of the step alone, the schedule's whole state is the step a checkpoint stores.
"""

from __future__ import annotations

import math

from llm_playground.train.config import TrainConfig


def learning_rate(step: int, config: TrainConfig) -> float:
    peak, floor, warmup, decay = config.learning_rate, config.min_lr, config.warmup_iters, config.decay_iters
    if step < warmup:
        return peak * (step + 1) / (warmup + 1)  # never 0, so step 0 already learns
    if step > decay:
        return floor
    ratio = (step - warmup) / max(1, decay - warmup)
    return floor + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (peak - floor)
