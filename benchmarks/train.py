"""Training benchmark: our trainer against nanoGPT's `train.py`, same model, data, batch and iterations.

    .venv/bin/python benchmarks/train.py --nanogpt /tmp/nanogpt [--iters 2000] [--segment 250] [--threads 1]

nanoGPT is not vendored: pass a checkout of karpathy/nanoGPT (nothing of it is copied here). Both trainers
read the same prepared data: this workspace's `data/processed/{train,val}.bin` (made by the pipeline's data
stages if missing), with a `meta.pkl` holding the vocabulary size in a temp directory for nanoGPT.

Both run nanoGPT's CPU configuration (4 layers, 4 heads, 128 wide, batch 12 × 64 tokens, lr 1e-3 → 1e-4,
warmup 100, dropout 0) in alternated segments — ours to iteration 250, theirs to 250, ours to 500… — each
resuming from its own checkpoint, so machine noise hits both alike. Iteration times come from each trainer's
own per-iteration log (ours: metrics.jsonl; nanoGPT: its `iter N: … time Xms` lines); iterations that
include an evaluation or a process start are left out of both. A short alternated run at 1 and 2 threads
follows. The last line is `RESULT vs_nanogpt=<tokens/s ratio> val_loss_ours=<x> val_loss_nanogpt=<y>`.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "batch_size": 12}
TOKENS_PER_ITER = MODEL["batch_size"] * MODEL["block_size"]
ITER_LINE = re.compile(r"^iter (\d+): loss ([\d.]+), time ([\d.]+)ms")
EVAL_LINE = re.compile(r"^step (\d+): train loss ([\d.]+), val loss ([\d.]+)")


def _env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "LLMP_THREADS": str(threads),
            "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def ensure_data(workspace: Path) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from llm_playground.train.pipeline import missing_data_stages, run_data_stage
    from llm_playground.workspace import Workspace

    ws = Workspace(workspace)
    for stage in missing_data_stages(ws):
        print(f"{stage}: {run_data_stage(ws, stage)}", flush=True)


def nanogpt_data(workspace: Path, into: Path) -> Path:
    meta = json.loads((workspace / "data/processed/meta.json").read_text())
    if meta["dtype"] != "uint16":
        raise SystemExit("nanoGPT reads uint16 token files: use a vocabulary of at most 65,536")
    for name in ("train.bin", "val.bin"):
        (into / name).symlink_to(workspace / "data/processed" / name)
    with open(into / "meta.pkl", "wb") as handle:
        pickle.dump({"vocab_size": meta["vocab_size"]}, handle)
    return into


def run_ours(workspace: Path, run: str, end: int, iters: int, segment: int, threads: int, eval_iters: int,
             resume: bool) -> list[tuple[int, float]]:
    """Train our GPT to iteration `end`; (iteration, ms) of the iterations this process ran."""
    settings = {**MODEL, "max_iters": end, "lr_decay_iters": iters, "eval_interval": segment, "log_interval": 1,
                "eval_iters": eval_iters, "sample_tokens": 100 if end == iters else 0, "threads": threads}
    command = [sys.executable, "-m", "llm_playground.cli.main", "train", "--out", f"runs/{run}"]
    command += ["--resume"] if resume else ["--preset", "tiny"]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    done = subprocess.run(command, cwd=workspace, env={**_env(threads), "LLMP_HOME": str(workspace)},
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"our trainer failed:\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in (workspace / "runs" / run / "metrics.jsonl").read_text().splitlines()]
    start = end - segment
    return [(r["step"], r["ms_per_step"]) for r in records if r["kind"] == "train" and start < r["step"] <= end]


def run_nanogpt(nanogpt: Path, data: Path, out: Path, end: int, iters: int, segment: int, threads: int,
                eval_iters: int, resume: bool) -> tuple[list[tuple[int, float]], dict[int, float]]:
    """nanoGPT's train.py to iteration `end`; (iteration, ms) per iteration and the val loss per evaluation."""
    command = [sys.executable, "train.py", "config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
               f"--eval_iters={eval_iters}", "--log_interval=1", f"--block_size={MODEL['block_size']}",
               f"--batch_size={MODEL['batch_size']}", f"--n_layer={MODEL['n_layer']}", f"--n_head={MODEL['n_head']}",
               f"--n_embd={MODEL['n_embd']}", f"--max_iters={end}", f"--lr_decay_iters={iters}", "--dropout=0.0",
               f"--dataset={data}", f"--out_dir={out}", f"--eval_interval={segment}", "--always_save_checkpoint=True",
               f"--init_from={'resume' if resume else 'scratch'}"]
    done = subprocess.run(command, cwd=nanogpt, env=_env(threads), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"nanoGPT failed:\n{done.stderr[-3000:]}")
    times, evals = [], {}
    for line in done.stdout.splitlines():
        if match := ITER_LINE.match(line):
            times.append((int(match.group(1)), float(match.group(3))))
        elif match := EVAL_LINE.match(line):
            evals[int(match.group(1))] = float(match.group(3))
    return times, evals


def steady(times: list[tuple[int, float]], first: int, last: int) -> list[float]:
    """The ms of iterations first+1..last (nanoGPT's numbering, from 0): iteration `first` of a segment
    carries an evaluation (nanoGPT) or a process's first step (ours), and nanoGPT's extra iteration after
    its last checkpoint is discarded work."""
    return [ms for it, ms in times if first < it <= last]


def tokens_per_s(ms: list[float]) -> float:
    return TOKENS_PER_ITER * len(ms) / (sum(ms) / 1000)


def compare(args: argparse.Namespace, workspace: Path, data: Path, tmp: Path) -> dict:
    ours_ms: list[float] = []
    theirs_ms: list[float] = []
    theirs_evals: dict[int, float] = {}
    for end in range(args.segment, args.iters + 1, args.segment):
        resume = end > args.segment
        ours = run_ours(workspace, "bench-ours", end, args.iters, args.segment, args.threads, args.eval_iters, resume)
        theirs, evals = run_nanogpt(args.nanogpt, data, tmp / "nanogpt-out", end, args.iters, args.segment,
                                    args.threads, args.eval_iters, resume)
        # Ours counts steps from 1 (the state after step N is "step N"); nanoGPT's "iter N" is its (N+1)-th.
        ours_ms += steady([(s - 1, ms) for s, ms in ours], end - args.segment, end - 1)
        theirs_ms += steady(theirs, end - args.segment, end - 1)
        theirs_evals |= evals
        print(f"segment to {end}: ours {statistics.median(ours_ms):.1f} ms/iter, "
              f"nanoGPT {statistics.median(theirs_ms):.1f} ms/iter (medians so far)", flush=True)
    records = [json.loads(line) for line in
               (workspace / "runs/bench-ours/metrics.jsonl").read_text().splitlines()]
    final = [r for r in records if r["kind"] == "eval" and r["step"] == args.iters][-1]
    return {"ours_tps": tokens_per_s(ours_ms), "theirs_tps": tokens_per_s(theirs_ms),
            "ours_ms": statistics.median(ours_ms), "theirs_ms": statistics.median(theirs_ms),
            "val_ours": final["val_loss"], "val_theirs": theirs_evals.get(args.iters, float("nan")),
            "sample": final["sample"], "iters_timed": (len(ours_ms), len(theirs_ms))}


def thread_check(args: argparse.Namespace, workspace: Path, data: Path, tmp: Path) -> dict[str, float]:
    """ms per iteration at 1 and 2 threads: short runs from scratch, alternated, two rounds each."""
    results: dict[str, list[float]] = {}
    n = args.thread_iters
    for round_ in range(2):
        for threads in (1, 2):
            ours = run_ours(workspace, f"bench-threads-{threads}-{round_}", n, n, n, threads, 1, False)
            theirs, _ = run_nanogpt(args.nanogpt, data, tmp / f"threads-{threads}-{round_}", n, n, n, threads, 1,
                                    False)
            results.setdefault(f"ours_{threads}", []).extend(steady([(s - 1, ms) for s, ms in ours], 0, n - 1))
            results.setdefault(f"nanogpt_{threads}", []).extend(steady(theirs, 0, n - 1))
    return {key: statistics.median(values) for key, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nanogpt", type=Path, default=Path(os.environ.get("NANOGPT_DIR", "/tmp/nanogpt")))
    parser.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "llmp-bench-train")
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--segment", type=int, default=250)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-iters", type=int, default=50)
    parser.add_argument("--thread-iters", type=int, default=60, help="iterations per run of the 1-vs-2 thread check")
    args = parser.parse_args()
    if not (args.nanogpt / "train.py").is_file():
        raise SystemExit(f"no nanoGPT checkout at {args.nanogpt} (git clone https://github.com/karpathy/nanoGPT)")
    if args.iters % args.segment:
        raise SystemExit("--iters must be a multiple of --segment")
    workspace = args.workspace.resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    ensure_data(workspace)
    for old in (workspace / "runs").glob("bench-*"):
        subprocess.run(["rm", "-rf", str(old)], check=True)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        data = nanogpt_data(workspace, Path(tempfile.mkdtemp(dir=tmp)))
        result = compare(args, workspace, data, tmp)
        threads = thread_check(args, workspace, data, tmp) if args.thread_iters else {}
    ratio = result["ours_tps"] / result["theirs_tps"]
    print(f"\n{args.iters} iterations at {args.threads} thread(s), alternated in segments of {args.segment}; "
          f"timed iterations: ours {result['iters_timed'][0]}, nanoGPT {result['iters_timed'][1]}")
    print(f"ours:    {result['ours_tps']:,.0f} tokens/s (median {result['ours_ms']:.1f} ms/iter), "
          f"val loss {result['val_ours']:.4f}")
    print(f"nanoGPT: {result['theirs_tps']:,.0f} tokens/s (median {result['theirs_ms']:.1f} ms/iter), "
          f"val loss {result['val_theirs']:.4f}")
    for key, ms in threads.items():
        print(f"threads: {key} {ms:.1f} ms/iter")
    print(f"sample (ours, step {args.iters}):\n{result['sample']}")
    print(f"RESULT vs_nanogpt={ratio:.3f} val_loss_ours={result['val_ours']:.4f} "
          f"val_loss_nanogpt={result['val_theirs']:.4f}")


if __name__ == "__main__":
    main()
