"""Function-calling benchmark: validity, accuracy, speed, and what the grammar buys.

    .venv/bin/python benchmarks/functions.py [--threads N]

Issue 4's targets, with the bundled SmolLM2-135M-Instruct: 100% of outputs valid against their schema on
every test file (the course's public prompts and benchmarks/data/adversarial_prompts.json); at least 10 of
the 11 public prompts exactly right (name, values and types); all 11 in under 30 s after the model is
loaded; the grammar's mask time per token at most 5% of the forward time per token. In the same run the
same model and prompts go through plain generation + JSON parsing (no grammar) for comparison.
Calls use the bundled LoRA adapter (the default); the public prompts are also run with `--adapter none`,
and a held-out generated set (families and phrasings never trained on) is scored with and without it.
The last line printed is `RESULT valid_pct=<x> exact=<k>/<n> seconds=<s> mask_pct_of_forward=<p>
unconstrained_parse_pct=<q> exact_no_adapter=<k>/<n> heldout_base_pct=<a> heldout_adapted_pct=<b>`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

from llm_playground.functions import load_functions, validate_call
from llm_playground.functions.batch import run_batch
from llm_playground.functions.evaluate import evaluate_calls
from llm_playground.functions.prompt import call_prompt
from llm_playground.functions.tuning.dataset import generate_examples
from llm_playground.functions.tuning.evaluate import example_accuracy
from llm_playground.generate import SamplingParams
from llm_playground.generate.loop import complete
from llm_playground.model import load_model
from llm_playground.model.runtime import configure_threads

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "src/llm_playground/functions/examples"
ADVERSARIAL = ROOT / "benchmarks/data/adversarial_prompts.json"


def unconstrained(model, functions, prompts):
    """Plain greedy generation with the same prompt, then the first JSON object in the text."""
    entries, parsed = [], 0
    params = SamplingParams(temperature=0.0, max_new_tokens=96)
    for prompt in prompts:
        ids = model.tokenizer.encode(call_prompt(model.tokenizer, [{"role": "user", "content": prompt}], functions))
        text = complete(model, ids, params)[0].text
        if prompt == prompts[0]:
            print(f"  (without the grammar, {prompt!r} gave {text!r})")
        entry = {"prompt": prompt, "name": None, "parameters": {}}
        match = re.search(r"\{.*\}", text, re.S)
        try:
            call = json.loads(match.group(0)) if match else None
        except json.JSONDecodeError:
            call = None
        spec = next((f for f in functions if isinstance(call, dict) and f.name == call.get("name")), None)
        checked = validate_call(spec, call.get("parameters")) if spec is not None else None
        if checked is not None:
            parsed += 1
            entry = {"prompt": prompt, "name": checked.name, "parameters": checked.parameters}
        entries.append(entry)
    return entries, 100.0 * parsed / len(prompts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--heldout", type=int, default=60, help="held-out generated examples to score")
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    functions = load_functions(EXAMPLES / "functions_definition.json")
    public = [p["prompt"] for p in json.loads((EXAMPLES / "function_calling_tests.json").read_text())]
    adversarial = [p["prompt"] for p in json.loads(ADVERSARIAL.read_text())]
    expected = json.loads((EXAMPLES / "function_calling_expected.json").read_text())
    start = time.perf_counter()
    model = load_model("smollm2", threads=threads)
    print(f"model {model.info.name}, loaded in {time.perf_counter() - start:.1f} s; {os.cpu_count()} cores, "
          f"{threads} torch thread(s)")

    report = run_batch(model, functions, public)
    evaluation = evaluate_calls(report.entries, expected, functions)
    summary = report.summary()
    print(f"public prompts: {evaluation.exact}/{evaluation.total} exact, right function "
          f"{evaluation.name_correct}/{evaluation.total}, {summary['valid_pct']}% valid, {summary['seconds']} s "
          f"({summary['mean_ms_per_call']} ms a call)")
    for failure in evaluation.failures:
        print(f"  ✗ {failure['prompt']!r}: {'; '.join(failure['problems'])}")
    hard = run_batch(model, functions, adversarial)
    hard_answered = [o for o in hard.outcomes if o is not None]
    refused = [e["error"].split(" — ")[0] for e, o in zip(hard.entries, hard.outcomes, strict=True) if o is None]
    print(f"adversarial prompts: {sum(o.stats.valid for o in hard_answered)} of {len(hard_answered)} answered are "
          f"valid; {len(refused)} refused with a one-line error: {refused}")
    answered = [o for o in report.outcomes + hard.outcomes if o is not None]
    valid_pct = 100.0 * sum(o.stats.valid for o in answered) / len(answered)

    tokens = sum(o.stats.tokens for o in answered)
    sampled = sum(len([s for s in o.steps if not s["forced"]]) for o in answered)
    # The conservative ratio: mask time per sampled step over forward time per generated token (forced
    # tokens share one forward pass, which makes the forward look cheaper per token).
    forward_per_token = sum(o.stats.forward_ms for o in answered) / max(1, tokens)
    mask_per_step = sum(o.stats.mask_ms for o in answered) / max(1, sampled)
    mask_pct = 100.0 * mask_per_step / forward_per_token
    print(f"per token: forward {forward_per_token:.2f} ms (prefill included), grammar mask {mask_per_step:.3f} ms "
          f"a sampled step ({mask_pct:.2f}% of the forward); {sum(o.stats.forced_tokens for o in answered)} of "
          f"{tokens} tokens forced by the grammar (no sampling, no mask)")

    no_adapter = run_batch(model, functions, public, adapter="none")
    base_eval = evaluate_calls(no_adapter.entries, expected, functions)
    print(f"public prompts with --adapter none: {base_eval.exact}/{base_eval.total} exact, right function "
          f"{base_eval.name_correct}/{base_eval.total}, {no_adapter.summary()['seconds']} s")
    for failure in base_eval.failures:
        print(f"  ✗ {failure['prompt']!r}: {'; '.join(failure['problems'])}")
    heldout = generate_examples(args.heldout, seed=0, heldout=True)
    held_base = example_accuracy(model, heldout, "none")
    held_adapted = example_accuracy(model, heldout, "default")
    print(f"held-out generated set ({len(heldout)} requests, families and phrasings not trained on): "
          f"{held_base.exact}/{held_base.total} exact without the adapter, {held_adapted.exact}/{held_adapted.total} "
          f"with it")
    for request, wanted, got in held_adapted.misses[:5]:
        print(f"  ✗ (adapted) {request!r}: expected {wanted}, got {got}")

    plain_entries, parse_pct = unconstrained(model, functions, public)
    plain = evaluate_calls(plain_entries, expected, functions)
    print(f"without the grammar (same prompt, greedy, first JSON object parsed): {parse_pct:.0f}% parse and "
          f"validate, {plain.exact}/{plain.total} exact")
    print(f"RESULT valid_pct={valid_pct:.1f} exact={evaluation.exact}/{evaluation.total} "
          f"seconds={summary['seconds']:.1f} mask_pct_of_forward={mask_pct:.2f} "
          f"unconstrained_parse_pct={parse_pct:.0f} exact_no_adapter={base_eval.exact}/{base_eval.total} "
          f"heldout_base_pct={held_base.pct:.1f} heldout_adapted_pct={held_adapted.pct:.1f}")


if __name__ == "__main__":
    main()
