"""Function-calling benchmark: the public prompts, and function sets and phrasings never tuned on.

    .venv/bin/python benchmarks/functions.py [--heldout 300] [--threads 1] [--baseline] [--ablation N]

With the bundled SmolLM2-135M-Instruct and its LoRA adapter:
- the course's 11 public prompts (exact name, values and types) and the adversarial prompts (valid JSON);
- the catalog's held-out split (functions/tuning/catalog.py: function families no rule, threshold or
  training example came from): `--heldout N` single-call requests (tool_choice "required"), N/5
  irrelevant requests (tool_choice "auto", right when no call is made) and N/15 parallel requests
  ("required", parallel), matched with BFCL's rules and exact strings (`strict`);
- `--baseline`: the same held-out requests without the decoding helps (the reference, in the same run);
- `--ablation N`: each decoding help alone against none on N tuning-split requests (how they were chosen).
The last line is `RESULT valid_pct=<v> exact=<k>/11 heldout_exact_pct=<x> irrelevance_pct=<y>
parallel_pct=<z> seconds_per_call=<s> cpu_seconds_per_call=<c> heldout_n=<n> ...`; the results file is
benchmarks/results/functions.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

from llm_playground.functions import load_functions
from llm_playground.functions.batch import run_batch
from llm_playground.functions.bfcl import BfclReport, evaluate_bfcl
from llm_playground.functions.evaluate import evaluate_calls
from llm_playground.functions.helps import ALL as ALL_HELPS
from llm_playground.functions.tuning.catalog import HELDOUT, as_bfcl, cases
from llm_playground.model import load_model
from llm_playground.model.runtime import configure_threads

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "src/llm_playground/functions/examples"
ADVERSARIAL = ROOT / "benchmarks/data/adversarial_prompts.json"
RESULTS = ROOT / "benchmarks/results/functions.md"


def catalog_items(split: str, singles: int, seed: int = 0) -> list:
    return [as_bfcl(c) for c in cases(split, singles, max(1, singles // 5), max(1, singles // 15), seed)]


def describe(name: str, report: BfclReport) -> str:
    d = report.to_dict()
    kinds = ", ".join(f"{k} {v['correct']}/{v['total']} ({100 * v['correct'] / max(1, v['total']):.1f}%)"
                      for k, v in d["per_kind"].items())
    return (f"{name}: {kinds}; valid {d['valid_pct']}%; {d['seconds_per_call']} s a call wall, "
            f"{d['cpu_seconds_per_call']} s CPU")


def failure_kinds(report: BfclReport) -> dict[str, int]:
    """Failures grouped by what went wrong (the first problem of each)."""
    kinds: dict[str, int] = {}
    for failure in report.failures:
        problem = failure["problems"][0]
        kind = (f"{failure['kind']}: " + ("wrong function" if problem.startswith("function") else
                                           "missing argument" if problem.endswith("missing") else
                                           "invented argument" if problem.startswith("unexpected") else
                                           "call count" if "call(s)" in problem else "wrong value"))
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--heldout", type=int, default=300, help="held-out single-call requests")
    parser.add_argument("--baseline", action="store_true", help="also run the held-out set without the helps")
    parser.add_argument("--ablation", type=int, default=0, help="tuning-split requests per help, one by one")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    threads = configure_threads(args.threads)
    functions = load_functions(EXAMPLES / "functions_definition.json")
    public = [p["prompt"] for p in json.loads((EXAMPLES / "function_calling_tests.json").read_text())]
    adversarial = [p["prompt"] for p in json.loads(ADVERSARIAL.read_text())]
    expected = json.loads((EXAMPLES / "function_calling_expected.json").read_text())
    start = time.perf_counter()
    model = load_model("smollm2", threads=threads)
    load1 = os.getloadavg()[0]
    print(f"model {model.info.name}, loaded in {time.perf_counter() - start:.1f} s; {os.cpu_count()} cores, "
          f"{threads} torch thread(s), load average {load1:.1f}")
    lines = []

    report = run_batch(model, functions, public)
    evaluation = evaluate_calls(report.entries, expected, functions)
    summary = report.summary()
    lines.append(f"public prompts: {evaluation.exact}/{evaluation.total} exact, {summary['valid_pct']}% valid, "
                 f"{summary['seconds']} s")
    print(lines[-1])
    for failure in evaluation.failures:
        print(f"  ✗ {failure['prompt']!r}: {'; '.join(failure['problems'])}")
    hard = run_batch(model, functions, adversarial)
    answered = [o for o in report.outcomes + hard.outcomes if o is not None]
    valid_pct = 100.0 * sum(o.stats.valid for o in answered) / len(answered)
    lines.append(f"adversarial prompts: {sum(o is None for o in hard.outcomes)} refused with a one-line error, "
                 f"the rest valid: {valid_pct:.1f}% of all answers valid")
    print(lines[-1])

    extra = ""
    if args.ablation:
        items = catalog_items("tuning", args.ablation, seed=1)
        none = evaluate_bfcl(model, items, strict=True, helps=())
        lines.append(describe("tuning split, no helps", none))
        print(lines[-1])
        for help_name in sorted(ALL_HELPS):
            alone = evaluate_bfcl(model, items, strict=True, helps=(help_name,))
            lines.append(describe(f"tuning split, only {help_name}", alone))
            print(lines[-1])
        every = evaluate_bfcl(model, items, strict=True)
        lines.append(describe("tuning split, all helps", every))
        print(lines[-1])

    items = catalog_items("heldout", args.heldout, args.seed)
    def progress(index: int, entry: dict) -> None:
        if (index + 1) % 25 == 0:
            print(f"  … {index + 1}/{len(items)} held-out requests", flush=True)

    held = evaluate_bfcl(model, items, strict=True, on_done=progress)
    lines.append(describe(f"held-out split ({len(HELDOUT)} function sets, all helps)", held))
    print(lines[-1])
    kinds = failure_kinds(held)
    lines.append(f"held-out failure kinds: {kinds}")
    print(lines[-1])
    for failure in held.failures[:12]:
        print(f"  ✗ {failure['request'][:90]!r}: {'; '.join(failure['problems'])[:160]}")
    if args.baseline:
        base = evaluate_bfcl(model, items, strict=True, helps=())
        lines.append(describe("held-out split, no helps (reference)", base))
        print(lines[-1])
        extra = (f" baseline_heldout_exact_pct={base.pct('single'):.1f} baseline_irrelevance_pct="
                 f"{base.pct('irrelevance'):.1f} baseline_parallel_pct={base.pct('parallel'):.1f}")
    held_dict = held.to_dict()
    result = (f"RESULT valid_pct={valid_pct:.1f} exact={evaluation.exact}/{evaluation.total} "
              f"heldout_exact_pct={held.pct('single'):.1f} irrelevance_pct={held.pct('irrelevance'):.1f} "
              f"parallel_pct={held.pct('parallel'):.1f} seconds_per_call={held_dict['seconds_per_call']} "
              f"cpu_seconds_per_call={held_dict['cpu_seconds_per_call']} heldout_valid_pct={held_dict['valid_pct']} "
              f"heldout_n={held_dict['total']}{extra}")
    load2 = os.getloadavg()[0]
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.write_text(
        f"# benchmarks/functions.py\n\n{stamp}; {platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"cores (shared with other jobs), {threads} torch thread(s); load average {load1:.1f} at the start, "
        f"{load2:.1f} at the end. Command: `python benchmarks/functions.py --heldout {args.heldout}"
        f"{' --baseline' if args.baseline else ''}{f' --ablation {args.ablation}' if args.ablation else ''}`\n\n"
        + "".join(f"- {line}\n" for line in lines) + f"\n```\n{result}\n```\n", encoding="utf-8")
    print(result)


if __name__ == "__main__":
    main()
