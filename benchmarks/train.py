"""Training benchmark: our trainer against nanoGPT's `train.py`, same model, data, batch and iterations.

    .venv/bin/python benchmarks/train.py --nanogpt /tmp/nanogpt [--iters 2000] [--threads 2] [--slice 5]

nanoGPT is not vendored: pass a checkout of karpathy/nanoGPT (nothing of it is copied here). Both trainers
read the same prepared data: this workspace's `data/processed/{train,val}.bin` (made by the pipeline's data
stages if missing), with a `meta.pkl` holding the vocabulary size in a temp directory for nanoGPT.

Both run nanoGPT's CPU configuration (4 layers, 4 heads, 128 wide, batch 12 × 64 tokens, lr 1e-3 → 1e-4,
warmup 100, dropout 0) from scratch, uninterrupted from their own point of view, but never at the same time:
the two processes take turns, `--slice` seconds each (SIGSTOP/SIGCONT), so machine noise falls on both
alike. Iteration times come from each trainer's own per-iteration log (ours: metrics.jsonl; nanoGPT: its
`iter N: … time Xms` lines); iterations that ran an evaluation, spanned a pause or started the process are
left out of both. Our trainer runs its defaults, which on a CPU with native bf16 (AVX512-BF16, AMX) means
bf16 autocast while nanoGPT trains in float32 on any CPU; a shorter comparison with ours forced to float32
follows, then one at 1 and 2 threads. The last line is
`RESULT vs_nanogpt=<tokens/s ratio> val_loss_ours=<x> val_loss_nanogpt=<y> vs_nanogpt_fp32=<ratio>`.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import signal
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


def ours_command(run: str, iters: int, eval_interval: int, threads: int, eval_iters: int,
                 sample_tokens: int, dtype: str) -> list[str]:
    settings = {**MODEL, "max_iters": iters, "lr_decay_iters": iters, "eval_interval": eval_interval,
                "log_interval": 1, "eval_iters": eval_iters, "sample_tokens": sample_tokens, "threads": threads,
                "dtype": dtype}
    command = [sys.executable, "-m", "llm_playground.cli.main", "train", "--preset", "tiny", "--out", f"runs/{run}"]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    return command


def nanogpt_command(data: Path, out: Path, iters: int, eval_interval: int, eval_iters: int) -> list[str]:
    return [sys.executable, "train.py", "config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
            f"--eval_iters={eval_iters}", "--log_interval=1", f"--block_size={MODEL['block_size']}",
            f"--batch_size={MODEL['batch_size']}", f"--n_layer={MODEL['n_layer']}", f"--n_head={MODEL['n_head']}",
            f"--n_embd={MODEL['n_embd']}", f"--max_iters={iters}", f"--lr_decay_iters={iters}", "--dropout=0.0",
            f"--dataset={data}", f"--out_dir={out}", f"--eval_interval={eval_interval}"]


def ours_times(workspace: Path, run: str) -> tuple[list[tuple[int, float]], dict[int, float], str]:
    """(iteration numbered from 0 as nanoGPT does, ms), val loss per evaluation, the last sample."""
    records = [json.loads(line) for line in (workspace / "runs" / run / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r["val_loss"] for r in records if r["kind"] == "eval"}
    samples = [r["sample"] for r in records if r["kind"] == "eval"]
    return [(r["step"] - 1, r["ms_per_step"]) for r in records if r["kind"] == "train"], evals, samples[-1]


def nanogpt_times(stdout: str) -> tuple[list[tuple[int, float]], dict[int, float]]:
    times, evals = [], {}
    for line in stdout.splitlines():
        if match := ITER_LINE.match(line):
            times.append((int(match.group(1)), float(match.group(3))))
        elif match := EVAL_LINE.match(line):
            evals[int(match.group(1))] = float(match.group(3))
    return times, evals


def alternate(processes: list[subprocess.Popen], slice_s: float) -> None:
    """Run the processes one at a time, `slice_s` seconds each in turn (SIGSTOP/SIGCONT), until all exit:
    machine noise then falls on both trainers alike, and each trains uninterrupted from its own view."""
    for process in processes[1:]:
        process.send_signal(signal.SIGSTOP)
    active = 0
    while any(p.poll() is None for p in processes):
        process = processes[active]
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            try:
                process.wait(timeout=slice_s)
            except subprocess.TimeoutExpired:
                if any(p.poll() is None for i, p in enumerate(processes) if i != active):
                    process.send_signal(signal.SIGSTOP)
        active = (active + 1) % len(processes)


def steady(times: list[tuple[int, float]], eval_interval: int, paused_ms: float) -> list[float]:
    """Iteration times without those that ran an evaluation (nanoGPT counts it in the iteration; it is left
    out of both) or that spanned a pause, and without the first (process start-up)."""
    return [ms for it, ms in times if it > 0 and it % eval_interval and ms < paused_ms]


def tokens_per_s(ms: list[float]) -> float:
    return TOKENS_PER_ITER * len(ms) / (sum(ms) / 1000)


def compare(args: argparse.Namespace, workspace: Path, data: Path, tmp: Path, threads: int, iters: int,
            eval_iters: int, run: str, dtype: str = "auto") -> dict:
    env = _env(threads)
    log = tmp / f"nanogpt-{run}.log"
    with open(log, "w") as stdout, open(tmp / f"ours-{run}.log", "w") as ours_log:
        ours = subprocess.Popen(ours_command(run, iters, args.eval_interval, threads, eval_iters,
                                             100 if iters == args.iters else 0, dtype),
                                cwd=workspace, env={**env, "LLMP_HOME": str(workspace)}, stdout=ours_log,
                                stderr=subprocess.STDOUT)
        theirs = subprocess.Popen(nanogpt_command(data, tmp / f"out-{run}", iters, args.eval_interval, eval_iters),
                                  cwd=args.nanogpt, env=env, stdout=stdout, stderr=subprocess.STDOUT)
        alternate([ours, theirs], args.slice)
    if ours.returncode or theirs.returncode:
        raise SystemExit(f"a trainer failed: ours {ours.returncode}, nanoGPT {theirs.returncode}; see {tmp}")
    ours_ms, ours_evals, sample = ours_times(workspace, run)
    theirs_ms, theirs_evals = nanogpt_times(log.read_text())
    paused = 0.5 * args.slice * 1000
    ours_ms, theirs_ms = steady(ours_ms, args.eval_interval, paused), steady(theirs_ms, args.eval_interval, paused)
    return {"ours_tps": tokens_per_s(ours_ms), "theirs_tps": tokens_per_s(theirs_ms),
            "ours_ms": statistics.median(ours_ms), "theirs_ms": statistics.median(theirs_ms),
            "ours_min": min(ours_ms), "theirs_min": min(theirs_ms),
            "val_ours": ours_evals.get(iters, float("nan")), "val_theirs": theirs_evals.get(iters, float("nan")),
            "sample": sample, "iters_timed": (len(ours_ms), len(theirs_ms))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nanogpt", type=Path, default=Path(os.environ.get("NANOGPT_DIR", "/tmp/nanogpt")))
    parser.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "llmp-bench-train")
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--eval-interval", type=int, default=250)
    parser.add_argument("--slice", type=float, default=5.0, help="seconds each trainer runs before the other")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-iters", type=int, default=50)
    parser.add_argument("--fp32-iters", type=int, default=500, help="iterations of a second comparison with our "
                                                                    "trainer forced to float32 (0: skip it)")
    parser.add_argument("--thread-iters", type=int, default=150, help="iterations per trainer in the 1-vs-2 thread "
                                                                       "check (0: skip it)")
    args = parser.parse_args()
    if not (args.nanogpt / "train.py").is_file():
        raise SystemExit(f"no nanoGPT checkout at {args.nanogpt} (git clone https://github.com/karpathy/nanoGPT)")
    workspace = args.workspace.resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    ensure_data(workspace)
    for old in (workspace / "runs").glob("bench-*"):
        subprocess.run(["rm", "-rf", str(old)], check=True)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        data = nanogpt_data(workspace, Path(tempfile.mkdtemp(dir=tmp)))
        result = compare(args, workspace, data, tmp, args.threads, args.iters, args.eval_iters, "bench-ours")
        print(f"main comparison done: ours {result['ours_ms']:.1f}, nanoGPT {result['theirs_ms']:.1f} ms/iter",
              flush=True)
        fp32 = None
        if args.fp32_iters:
            fp32 = compare(args, workspace, data, tmp, args.threads, args.fp32_iters, args.eval_iters, "bench-fp32",
                           "float32")
        threads = {}
        for count in (1, 2) if args.thread_iters else ():
            check = compare(args, workspace, data, tmp, count, args.thread_iters, 1, f"bench-threads-{count}")
            threads |= {f"ours_{count}": check["ours_ms"], f"nanogpt_{count}": check["theirs_ms"]}
    ratio = result["ours_tps"] / result["theirs_tps"]
    print(f"\n{args.iters} iterations at {args.threads} thread(s), alternated in slices of {args.slice:g} s; "
          f"timed iterations: ours {result['iters_timed'][0]}, nanoGPT {result['iters_timed'][1]}")
    for who, key in (("ours:   ", "ours"), ("nanoGPT:", "theirs")):
        print(f"{who} {result[key + '_tps']:,.0f} tokens/s (median {result[key + '_ms']:.1f} ms/iter, fastest "
              f"{result[key + '_min']:.1f}), val loss {result['val_' + key]:.4f}")
    if fp32 is not None:
        print(f"float32 forced (our default is bf16 autocast where the CPU computes bf16 natively): "
              f"{args.fp32_iters} iterations, ours {fp32['ours_tps']:,.0f} vs nanoGPT {fp32['theirs_tps']:,.0f} "
              f"tokens/s = {fp32['ours_tps'] / fp32['theirs_tps']:.3f}, val loss {fp32['val_ours']:.4f} vs "
              f"{fp32['val_theirs']:.4f}")
    for key, ms in threads.items():
        print(f"threads: {key} {ms:.1f} ms/iter")
    print(f"sample (ours, step {args.iters}):\n{result['sample']}")
    extra = f" vs_nanogpt_fp32={fp32['ours_tps'] / fp32['theirs_tps']:.3f}" if fp32 is not None else ""
    print(f"RESULT vs_nanogpt={ratio:.3f} val_loss_ours={result['val_ours']:.4f} "
          f"val_loss_nanogpt={result['val_theirs']:.4f}{extra}")


if __name__ == "__main__":
    main()
