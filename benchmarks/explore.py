"""Explorer benchmark: next token, walkthrough and all-layer attention on a 100-token prompt.

    .venv/bin/python benchmarks/explore.py [--reps N] [--threads N]

Targets (issue 5, the bundled SmolLM2-135M-Instruct on 2 cores): next token and walkthrough < 1 s, attention
of every layer and head < 2 s. Each analysis is the library call the CLI makes (`explore.next_token`,
`explore.walkthrough` with the CLI's defaults, `explore.attention`), after one warm-up run; the median of
`--reps` runs is reported. Attention and hidden states come from one forward pass per text. The last line
printed is `RESULT next_s=<s> walkthrough_s=<s> attention_s=<s>`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

from llm_playground.explore.attention import attention
from llm_playground.explore.next_token import next_token
from llm_playground.explore.walkthrough import walkthrough
from llm_playground.generate import SamplingParams
from llm_playground.model import load_model
from llm_playground.model.runtime import configure_threads

PROMPT_TOKENS = 100
TEXT = ("A language model reads text as a sequence of tokens. Each token becomes a vector, the vectors pass "
        "through a stack of transformer layers, and at every layer each position looks back at the positions "
        "before it through attention. The last layer's output at the last position is turned into logits, one "
        "score for every token in the vocabulary; a softmax turns the scores into probabilities, and sampling "
        "picks the next token. Then the whole process repeats, one token at a time, until the answer is done "
        "or the context window is full.")
# The walkthrough as `llmp explore walkthrough` runs it by default (one pass: the loop's prefill).
WALKTHROUGH = SamplingParams(temperature=0.7, seed=0, max_new_tokens=10)
TARGETS = {"next": 1.0, "walkthrough": 1.0, "attention": 2.0}


def timed(run: Callable[[], object], reps: int) -> list[float]:
    run()  # warm-up: first-call allocations and lazy initialisation
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: half the cores)")
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    start = time.perf_counter()
    model = load_model("smollm2", threads=threads)
    load_s = time.perf_counter() - start
    ids = model.tokenizer.encode(TEXT)[:PROMPT_TOKENS]
    assert len(ids) == PROMPT_TOKENS, f"the benchmark text gives only {len(ids)} tokens"
    print(f"model {model.info.name} ({model.info.parameters / 1e6:.1f}M parameters, {model.info.dtype}), loaded in "
          f"{load_s:.1f} s; {os.cpu_count()} cores, {threads} torch thread(s); prompt {len(ids)} tokens; "
          f"median of {args.reps} runs after a warm-up")
    runs = {
        "next": lambda: next_token(model, ids, top_n=10, temperature=1.0),
        "walkthrough": lambda: walkthrough(model, TEXT, ids, WALKTHROUGH),
        "attention": lambda: attention(model, ids),
    }
    medians = {}
    print(f"{'analysis':<12} {'median s':>9} {'min s':>7} {'max s':>7} {'target s':>9}  verdict")
    for name, run in runs.items():
        times = timed(run, args.reps)
        medians[name] = statistics.median(times)
        verdict = "ok" if medians[name] < TARGETS[name] else "SLOWER THAN TARGET"
        print(f"{name:<12} {medians[name]:>9.3f} {min(times):>7.3f} {max(times):>7.3f} {TARGETS[name]:>9.1f}  "
              f"{verdict}")
    layers = timed(lambda: walkthrough(model, TEXT, ids, WALKTHROUGH, layers=True), args.reps)
    print(f"(walkthrough --layers, which adds a pass keeping every layer's hidden states: median "
          f"{statistics.median(layers):.3f} s)")
    print(f"RESULT next_s={medians['next']:.3f} walkthrough_s={medians['walkthrough']:.3f} "
          f"attention_s={medians['attention']:.3f}")


if __name__ == "__main__":
    main()
