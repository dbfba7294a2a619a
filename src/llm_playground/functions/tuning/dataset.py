"""Generated request → call examples, rendered exactly as the calling pipeline renders them at run time.

The prompt is `call_prompt` with the chosen function alone (what `call_functions` decodes the arguments
from); the answer is `call_json(...)` followed by the end-of-turn token, and only the answer's tokens
carry a loss. Generation is seeded and deterministic. Training draws from the training phrasings of the
training families; the held-out set uses held-out phrasings and whole held-out families.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from llm_playground.functions.prompt import call_json, call_prompt
from llm_playground.functions.schema import FunctionSpec, parse_function
from llm_playground.functions.tuning import catalog, regex
from llm_playground.functions.tuning.common import FORBIDDEN_NUMBERS, FORBIDDEN_WORDS, Example
from llm_playground.functions.tuning.families import FAMILIES, HELDOUT_FAMILIES
from llm_playground.tokenizer.base import Tokenizer

REGEX_SHARE = 0.5  # the idioms are the hard part: half of every set is regex substitution


def generate_examples(count: int, seed: int, heldout: bool = False, catalog_share: float = 0.0) -> list[Example]:
    """`catalog_share` of the examples come from catalog.py's function sets (its tuning split for
    training, its held-out split with `heldout`), drawn from their own generator."""
    rng = random.Random(f"{seed}:{'heldout' if heldout else 'train'}")
    catalog_rng = random.Random(f"{seed}:catalog:{'heldout' if heldout else 'train'}")
    names = sorted(HELDOUT_FAMILIES if heldout else set(FAMILIES) - HELDOUT_FAMILIES)
    examples: list[Example] = []
    while len(examples) < count:
        if catalog_share and catalog_rng.random() < catalog_share:
            example = catalog_example(catalog_rng, heldout)
        elif rng.random() < REGEX_SHARE:
            example = regex.example(rng, heldout)
        elif heldout and rng.random() < 0.5:  # a training family, asked in a phrasing never trained on
            example = FAMILIES[rng.choice(sorted(FAMILIES))].example(rng, True)
        else:
            example = FAMILIES[rng.choice(names)].example(rng, heldout)
        if not _leaks(example):
            examples.append(example)
    return examples


def catalog_example(rng: random.Random, heldout: bool) -> Example:
    """One single call of a catalog set: the arguments a request does not mention are left out."""
    family = catalog.BY_KEY[rng.choice(sorted(catalog.HELDOUT if heldout else catalog.TUNING))]
    function = rng.choice(family.functions)
    request, answer = catalog.draw_call(rng, function)
    arguments: dict[str, Any] = {k: _plain(v[0]) for k, v in answer.items() if v[0] != ""}
    for key, spec in function.args.items():  # the course's format writes `number` arguments as floats
        if spec.schema["type"] == "number" and key in arguments:
            arguments[key] = float(arguments[key])
    return Example(family.key, function.tool(), request, arguments)


def _plain(value: object) -> object:
    return {k: _plain(v[0]) for k, v in value.items()} if isinstance(value, dict) else value


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
