"""Walkthrough: one request step by step — text → tokens → embeddings → layers → logits → softmax → top-5 →
sampled token → generated text.

It costs one pass over the prompt: the generation loop's own prefill. The loop runs the model through a
thin tap that keeps the logits of that prefill, so the statistics, the softmax and the top-5 shown are
exactly those the sampled token was drawn from. `layers=True` adds a `forward_full` pass that keeps every
layer's hidden state (their norms show how the representation grows), at the price of a second pass.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from llm_playground.explore.common import check_fits, label, labels
from llm_playground.explore.next_token import entropy, probabilities, top_table
from llm_playground.generate import Generation, SamplingParams
from llm_playground.model.base import Introspectable, KVCache, LanguageModel, unwrapped


@dataclass(frozen=True)
class Walkthrough:
    text: str
    ids: list[int]
    tokens: list[str]
    embedding_shape: tuple[int, int] | None  # (tokens, hidden); None when the backend does not say
    num_layers: int | None
    layer_norms: list[float]  # with layers=True: L2 norm of the last position's hidden state, embeddings then
    # each layer (the last one after the final norm, as transformers reports hidden states)
    logits_shape: tuple[int, ...]
    logits_stats: dict[str, float]  # min, max, mean, std of the last position's logits
    temperature: float
    softmax_sum: float
    entropy_bits: float
    top: pd.DataFrame  # the 5 most likely next tokens after temperature
    sampled_id: int
    sampled_text: str
    sampled_probability: float
    generated_text: str
    finish_reason: str
    seed: int
    timings_ms: dict[str, float]

    def steps(self) -> list[tuple[str, str]]:
        """(step, what happened) in order, for display."""
        shown = " ".join(f"[{t}]" for t in self.tokens[:12]) + (" …" if len(self.tokens) > 12 else "")
        stats, norms = self.logits_stats, self.layer_norms
        top = ", ".join(f"{row.text} {row.probability:.3f}" for row in self.top.itertuples())
        steps = [("text", f"{len(self.text)} characters: {self.text[:80]!r}"),
                 ("tokens", f"{len(self.ids)} tokens: {shown}")]
        if self.embedding_shape is not None:
            steps.append(("embeddings", f"each token id → a row of the embedding table: shape {self.embedding_shape}"))
        if self.num_layers is not None:
            layers = f"{self.num_layers} transformer layers, each keeping the shape and mixing in earlier positions"
            if norms:
                layers += (f"; the last position's norm grows {norms[0]:.1f} → {max(norms[:-1]):.1f}, "
                           f"{norms[-1]:.1f} after the final norm")
            steps.append(("layers", layers))
        return steps + [
            ("logits", f"shape {self.logits_shape}: min {stats['min']:.2f}, max {stats['max']:.2f}, "
                       f"mean {stats['mean']:.2f}, std {stats['std']:.2f}"),
            ("softmax", f"temperature {self.temperature:g} → probabilities summing to {self.softmax_sum:.4f}, "
                        f"entropy {self.entropy_bits:.2f} bits"),
            ("top-5", top),
            ("sampled", f"{self.sampled_text} (id {self.sampled_id}, p={self.sampled_probability:.3f}, "
                        f"seed {self.seed})"),
            ("generated", f"{self.generated_text!r} ({self.finish_reason})"),
        ]


class _PrefillTap:
    """The model as the loop sees it, keeping the logits of the loop's first forward call (the prompt)."""

    def __init__(self, model: LanguageModel) -> None:
        self.model, self.info, self.tokenizer = model, model.info, model.tokenizer
        self.logits: np.ndarray | None = None

    @property
    def context_length(self) -> int:
        return self.model.context_length

    def new_cache(self, capacity: int | None = None) -> KVCache:
        return self.model.new_cache(capacity)

    def forward(self, ids: Sequence[int], cache: KVCache) -> np.ndarray:
        logits = self.model.forward(ids, cache)
        if self.logits is None:
            self.logits = logits.copy()
        return logits


def _config(model: LanguageModel, *names: str) -> int | None:
    """A size from the backend's config, when it has one (the protocol does not promise it)."""
    config = getattr(unwrapped(model), "config", None)  # under the web app's lock: the backend's
    return next((int(v) for v in (getattr(config, n, None) for n in names) if v is not None), None)


def walkthrough(model: LanguageModel, text: str, ids: Sequence[int], params: SamplingParams,
                layers: bool = False) -> Walkthrough:
    ids = list(ids)
    check_fits(model, ids, "give a shorter prompt")
    timings: dict[str, float] = {}
    num_layers, hidden, norms = _config(model, "num_layers", "num_hidden_layers"), _config(model, "hidden_size"), []
    if layers and isinstance(model, Introspectable):
        start = time.perf_counter()
        states = model.forward_full(ids, attentions=False, hidden_states=True).hidden_states
        timings["layers_pass"] = (time.perf_counter() - start) * 1000
        if states is not None:
            num_layers, hidden = states.shape[0] - 1, states.shape[2]
            norms = [float(n) for n in np.linalg.norm(states[:, -1], axis=-1)]
    start = time.perf_counter()
    tap = _PrefillTap(model)
    generation = Generation(tap, ids, params.updated(n=1))
    first = list(generation)[0]  # the first step is the token sampled from the prompt's logits
    timings["generation"] = (time.perf_counter() - start) * 1000
    result, logits = generation.results[0], tap.logits
    assert logits is not None
    temperature = 0.0 if params.is_greedy else params.temperature
    probs = probabilities(logits, temperature)
    return Walkthrough(
        text=text, ids=ids, tokens=labels(model.tokenizer, ids),
        embedding_shape=None if hidden is None else (len(ids), hidden), num_layers=num_layers,
        layer_norms=norms, logits_shape=tuple(logits.shape),
        logits_stats={"min": float(logits.min()), "max": float(logits.max()), "mean": float(logits.mean()),
                      "std": float(logits.std())},
        temperature=temperature, softmax_sum=float(probs.sum()), entropy_bits=entropy(probs) / np.log(2),
        top=top_table(model.tokenizer, logits, probs, 5), sampled_id=first.token_id,
        sampled_text=label(model.tokenizer, first.token_id), sampled_probability=first.prob,
        generated_text=result.text, finish_reason=result.finish_reason, seed=result.seed, timings_ms=timings,
    )
