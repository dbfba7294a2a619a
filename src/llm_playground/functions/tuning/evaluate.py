"""Exact-match accuracy of generated examples through the real calling pipeline (the held-out set)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from llm_playground.functions.calling import call_functions
from llm_playground.functions.evaluate import same_value
from llm_playground.functions.tuning.common import Example
from llm_playground.functions.tuning.dataset import spec_of
from llm_playground.model.base import LanguageModel


@dataclass
class ExampleAccuracy:
    exact: int = 0
    total: int = 0
    per_family: Counter = field(default_factory=Counter)
    family_totals: Counter = field(default_factory=Counter)
    misses: list[tuple[str, dict, dict]] = field(default_factory=list)

    @property
    def pct(self) -> float:
        return 100.0 * self.exact / max(1, self.total)


def example_accuracy(model: LanguageModel, examples: list[Example], adapter: str | Path | None) -> ExampleAccuracy:
    """Each example's request with its function alone (what argument decoding sees), greedy, under the grammar."""
    result = ExampleAccuracy()
    for example in examples:
        spec = spec_of(example)
        outcome = call_functions(model, [{"role": "user", "content": example.request}], [spec], adapter=adapter)
        got = outcome.calls[0].arguments if outcome.calls else {}
        right = got.keys() == example.arguments.keys() and all(
            same_value(value, got[name], spec.properties.get(name)) for name, value in example.arguments.items())
        result.total += 1
        result.family_totals[example.family] += 1
        if right:
            result.exact += 1
            result.per_family[example.family] += 1
        else:
            result.misses.append((example.request, example.arguments, got))
    return result
