"""Experiments: the same prompt under several sampling settings, with diversity measures.

Every run goes through the one generation loop (`generate.complete`) with a seeded `SamplingParams`, so a
sweep is reproducible: same seed, same settings, same outputs. Diversity is measured on the generated
token ids: distinct-n = distinct n-grams / all n-grams over a setting's samples (Li et al., 2016).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from llm_playground.errors import InvalidParameter
from llm_playground.generate import SamplingParams, complete
from llm_playground.model.base import LanguageModel

KINDS = ("temperature", "sampling", "repetition")
TEMPERATURES = (0.2, 0.7, 1.0, 1.5)
PENALTIES = (1.0, 1.2, 1.5)


@dataclass(frozen=True)
class Sweep:
    kind: str
    prompt_tokens: int
    outputs: pd.DataFrame  # setting, sample, text, tokens, finish_reason, seed
    summary: pd.DataFrame  # setting, samples, distinct_1, distinct_2, unique_outputs, mean_tokens
    params: dict[str, dict]  # setting → its SamplingParams, as given to the loop


def distinct_n(sequences: Sequence[Sequence[int]], n: int) -> float:
    grams = [tuple(seq[i: i + n]) for seq in sequences for i in range(len(seq) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def run(model: LanguageModel, prompt_ids: Sequence[int], settings: Mapping[str, SamplingParams],
        kind: str = "custom") -> Sweep:
    outputs, summary = [], []
    for name, params in settings.items():
        results = complete(model, prompt_ids, params)  # n samples share one prefill
        outputs += [{"setting": name, "sample": r.index, "text": r.text, "tokens": r.completion_tokens,
                     "finish_reason": r.finish_reason, "seed": r.seed} for r in results]
        sequences = [r.token_ids for r in results]
        summary.append({"setting": name, "samples": len(results), "distinct_1": distinct_n(sequences, 1),
                        "distinct_2": distinct_n(sequences, 2), "unique_outputs": len({r.text for r in results}),
                        "mean_tokens": sum(map(len, sequences)) / len(sequences)})
    return Sweep(kind, len(prompt_ids), pd.DataFrame(outputs), pd.DataFrame(summary),
                 {name: p.model_dump(mode="json") for name, p in settings.items()})


def temperature_settings(base: SamplingParams, temperatures: Sequence[float] = TEMPERATURES
                         ) -> dict[str, SamplingParams]:
    return {f"temperature={t:g}": base.updated(temperature=t, greedy=False, top_k=0, top_p=1.0, min_p=0.0)
            for t in temperatures}


def sampling_settings(base: SamplingParams) -> dict[str, SamplingParams]:
    """Top-k against top-p at the base temperature, with the untruncated distribution as the reference."""
    plain = base.updated(greedy=False, top_k=0, top_p=1.0, min_p=0.0)
    return {"full distribution": plain, "top_k=5": plain.updated(top_k=5), "top_k=50": plain.updated(top_k=50),
            "top_p=0.5": plain.updated(top_p=0.5), "top_p=0.9": plain.updated(top_p=0.9)}


def repetition_settings(base: SamplingParams, penalties: Sequence[float] = PENALTIES) -> dict[str, SamplingParams]:
    # Greedy decoding gives identical samples: one is enough to see the loops a penalty breaks.
    base = base.updated(n=1) if base.is_greedy else base
    return {f"repetition_penalty={p:g}": base.updated(repetition_penalty=p) for p in penalties}


def sweep(model: LanguageModel, prompt_ids: Sequence[int], kind: str, base: SamplingParams) -> Sweep:
    """One of the three preset experiments around `base` (its seed, samples and length)."""
    if kind == "temperature":
        settings = temperature_settings(base)
    elif kind == "sampling":
        settings = sampling_settings(base)
    elif kind == "repetition":
        settings = repetition_settings(base)
    else:
        raise InvalidParameter(f"unknown sweep {kind!r}", f"use one of: {', '.join(KINDS)}")
    return run(model, prompt_ids, settings, kind)
