"""Build-flow benchmark: collect the bundled Shakespeare, train tokenizers, prepare the token arrays.

    .venv/bin/python benchmarks/data.py [--reps 3] [--out benchmarks/results/data.md]

Each stage runs `--reps` times in a fresh temp workspace through the library calls the CLI makes; the
median (min–max) wall time is reported, with the corpus and token counts the stages produced. Prepare
runs with 1 and 2 SentencePiece threads to show what encoding on all cores buys.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from llm_playground.data import CollectRequest, collect, prepare, train_tokenizer  # noqa: E402
from llm_playground.workspace import Workspace  # noqa: E402

VOCABS = [(2048, "bpe"), (4096, "bpe"), (8192, "bpe"), (4096, "unigram")]


def timed(function: Callable[[], object], reps: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(reps):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return times, result


def cell(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} s [{min(times):.2f}–{max(times):.2f}]"


def encode_rows(workspace: Workspace, reps: int) -> list[str]:
    """Whole documents vs line by line (what prepare does), 1 thread, alternated so load hits both alike."""
    from llm_playground.data import read_documents
    from llm_playground.tokenizer import SentencePieceTokenizer

    tokenizer = SentencePieceTokenizer(workspace.tokenizer_path)
    documents = list(read_documents(workspace.corpus_path))
    lines = [line for document in documents for line in document.split("\n")]
    times: dict[str, list[float]] = {"whole documents": [], "line by line": []}
    for _ in range(reps):
        for name, texts in (("whole documents", documents), ("line by line", lines)):
            started = time.perf_counter()
            tokenizer.encode_batch(texts, threads=1)
            times[name].append(time.perf_counter() - started)
    speedup = statistics.median(times["whole documents"]) / statistics.median(times["line by line"])
    return [f"| encode only, {name} (1 thread) | {cell(t)} | {len(texts):,} texts"
            + (f"; {speedup:.2f}x faster, same ids (checked by tests) |" if name == "line by line" else " |")
            for (name, t), texts in zip(times.items(), (documents, lines), strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "data.md")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Workspace(Path(tmp))
        times, manifest = timed(lambda: collect(workspace, CollectRequest()), args.reps)
        chars = manifest["characters"]  # type: ignore[index]
        rows.append(f"| collect (shakespeare) | {cell(times)} | {manifest['documents']} plays, "  # type: ignore[index]
                    f"{chars:,} characters |")
        for vocab, kind in VOCABS:
            times, trained = timed(lambda v=vocab, k=kind: train_tokenizer(workspace, v, k), args.reps)
            tokens = sum(prepare(workspace, 0.1, threads=2)[key] for key in ("train_tokens", "val_tokens"))
            rows.append(f"| tokenizer train ({kind}, vocab {vocab}) | {cell(times)} | {tokens:,} tokens, "
                        f"{chars / tokens:.2f} characters per token |")
        train_tokenizer(workspace, 4096, "bpe")
        rows.extend(encode_rows(workspace, args.reps))
        for threads in (1, 2):
            times, meta = timed(lambda t=threads: prepare(workspace, 0.1, threads=t), args.reps)
            total = meta["train_tokens"] + meta["val_tokens"]  # type: ignore[index]
            rows.append(f"| prepare (vocab 4096, {threads} thread{'s' if threads > 1 else ''}) | {cell(times)} | "
                        f"{total:,} tokens ({meta['train_tokens']:,} train + {meta['val_tokens']:,} val), "  # type: ignore[index]
                        f"{total / statistics.median(times) / 1e6:.2f}M tokens/s |")
    load_after = os.getloadavg()
    header = (f"AMD EPYC, 2 cores, shared; Python {platform.python_version()}; "
              f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. Load average before/after: "
              f"{', '.join(f'{x:.2f}' for x in load_before)} / {', '.join(f'{x:.2f}' for x in load_after)}. "
              f"Median of {args.reps} runs [min–max].\n\n| stage | time | result |\n| --- | ---: | --- |\n")
    report = header + "\n".join(rows) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
