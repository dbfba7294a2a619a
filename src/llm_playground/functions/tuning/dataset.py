"""Generated request → call examples, rendered exactly as the calling pipeline renders them at run time.

The prompt is `call_prompt` with the chosen function alone (what `call_functions` decodes the arguments
from); the answer is `call_json(...)` followed by the end-of-turn token, and only the answer's tokens
carry a loss. Generation is seeded and deterministic. Training draws from the training phrasings of the
training families; the held-out set uses held-out phrasings and whole held-out families.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from llm_playground.functions.prompt import call_json, call_prompt
from llm_playground.functions.schema import FunctionSpec, parse_function
from llm_playground.functions.tuning import regex
from llm_playground.functions.tuning.common import FORBIDDEN_NUMBERS, FORBIDDEN_WORDS, Example
from llm_playground.functions.tuning.families import FAMILIES, HELDOUT_FAMILIES
from llm_playground.tokenizer.base import Tokenizer

REGEX_SHARE = 0.5  # the idioms are the hard part: half of every set is regex substitution


def generate_examples(count: int, seed: int, heldout: bool = False) -> list[Example]:
    rng = random.Random(f"{seed}:{'heldout' if heldout else 'train'}")
    names = sorted(HELDOUT_FAMILIES if heldout else set(FAMILIES) - HELDOUT_FAMILIES)
    examples: list[Example] = []
    while len(examples) < count:
        if rng.random() < REGEX_SHARE:
            example = regex.example(rng, heldout)
        elif heldout and rng.random() < 0.5:  # a training family, asked in a phrasing never trained on
            example = FAMILIES[rng.choice(sorted(FAMILIES))].example(rng, True)
        else:
            example = FAMILIES[rng.choice(names)].example(rng, heldout)
        if not _leaks(example):
            examples.append(example)
    return examples


def _leaks(example: Example) -> bool:
    """Anything of the public test prompts (their words or numbers) in a generated example."""
    words = set(example.request.lower().replace("'", " ").replace('"', " ").split())
    numbers = {int(float(w)) for w in words if w.replace(".", "", 1).isdigit() and float(w).is_integer()}
    return bool(words & FORBIDDEN_WORDS or numbers & FORBIDDEN_NUMBERS)


def spec_of(example: Example) -> FunctionSpec:
    return parse_function(example.definition, f"generated {example.family} example")


def answer_text(example: Example) -> str:
    return call_json(spec_of(example).name, example.arguments)


@dataclass(frozen=True)
class Encoded:
    ids: list[int]  # prompt + answer + end of turn
    answer_start: int  # the first answer token's index: losses are taken from here on


def encode(tokenizer: Tokenizer, example: Example, end_id: int) -> Encoded:
    prompt = call_prompt(tokenizer, [{"role": "user", "content": example.request}], [spec_of(example)])
    prompt_ids = tokenizer.encode(prompt)
    answer_ids = tokenizer.encode(answer_text(example))
    return Encoded(prompt_ids + answer_ids + [end_id], len(prompt_ids))
