"""Knowledge-base benchmark: retrieval quality, ingestion speed, search latency at 100k chunks, store choice.

    .venv/bin/python benchmarks/rag.py [--synthetic 100000] [--no-lancedb] [--no-bf16] [--threads 1]

Data: CPython's own reference documentation as installed (`pydoc_data.topics`, 79 topics, ~465k
characters), one Markdown file a topic; questions written for this benchmark (benchmarks/data/
rag_questions.json: 60 answerable ones, each with its gold topic and a phrase of the gold passage, and 20
that the documents cannot answer), split in halves: `tuning` (what the abstention threshold was chosen on)
and `heldout` (touched by nothing). A hit is gold when it comes from the gold topic and contains the
phrase. Latency at 100k: synthetic chunks generated at run time (words drawn from the corpus' own word
frequencies, random unit vectors), searched with the real questions' embeddings, against exact numpy brute
force (full scores + full sort) in the same run; LanceDB gets the same 100k rows when it is installed.
The last line is `RESULT recall_at_5=<hybrid, held-out> ingest_chunks_per_s=<n> search_ms_p50=<ms>
search_ms_at_100k=<ms> vs_bruteforce=<hybrid at 100k / brute force>`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from llm_playground.knowledge import open_kb
from llm_playground.knowledge.answer import ABSTAIN_BELOW
from llm_playground.knowledge.embedder import MiniLMEmbedder
from llm_playground.knowledge.store import NewChunk, Store
from llm_playground.model.runtime import configure_threads

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "benchmarks/data/rag_questions.json"
RESULTS = ROOT / "benchmarks/results/rag.md"
MODES = ("hybrid", "dense", "bm25")


def norm(text: str) -> str:
    return " ".join(text.split()).lower()


def write_corpus(folder: Path) -> str:
    from pydoc_data.topics import topics

    folder.mkdir(parents=True, exist_ok=True)
    for name, text in topics.items():
        (folder / f"{name}.md").write_text(f"# {name}\n\n{text}", encoding="utf-8")
    return " ".join(topics.values())


def is_gold(hit, item: dict) -> bool:  # noqa: ANN001
    return Path(hit.source).stem == item["topic"] and norm(item["gold"]) in norm(hit.text)


def recall(kb, items: list[dict], mode: str, k: int = 5) -> float:  # noqa: ANN001
    found = sum(any(is_gold(h, it) for h in kb.search(it["question"], k=k, mode=mode)) for it in items)
    return found / len(items)


def best_cosine(kb, question: str) -> float:  # noqa: ANN001
    return max((h.dense or 0.0 for h in kb.search(question, k=4)), default=0.0)


def calibrate(positives: list[float], negatives: list[float]) -> tuple[float, float]:
    """The threshold (midpoint between neighbouring scores) with the best accuracy: (threshold, accuracy)."""
    scores = sorted(set(positives + negatives))
    best = (0.0, 0.0)
    for low, high in zip(scores, scores[1:], strict=False):
        t = (low + high) / 2
        acc = (sum(p >= t for p in positives) + sum(n < t for n in negatives)) / (len(positives) + len(negatives))
        if acc > best[1]:
            best = (t, acc)
    return best


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def synthetic_store(path: Path, n: int, corpus: str, dims: int, rng: np.random.Generator) -> tuple[Store, float]:
    words, counts = np.unique(np.array(norm(corpus).split()), return_counts=True)
    probs = counts / counts.sum()
    store = Store(path)
    started, per_file = time.perf_counter(), 1000
    for f in range(0, n, per_file):
        size = min(per_file, n - f)
        texts = [" ".join(rng.choice(words, size=120, p=probs)) for _ in range(size)]
        vectors = rng.standard_normal((size, dims)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        store.put_file(f"synthetic/{f // per_file}.md", f"{f}", "synthetic", 0,
                       [NewChunk(t, "synthetic", i, 0, len(t)) for i, t in enumerate(texts)], vectors)
    return store, time.perf_counter() - started


def lancedb_figures(store: Store, queries: list[tuple[str, np.ndarray]], folder: Path) -> dict:
    import lancedb
    import pyarrow as pa
    from lancedb.index import FTS

    rows = store.db.execute("SELECT id, text, vector FROM chunks ORDER BY id").fetchall()
    dims = len(rows[0][2]) // 4
    vectors = np.frombuffer(b"".join(r[2] for r in rows), np.float32).reshape(len(rows), dims)
    table_data = pa.table({"id": pa.array([r[0] for r in rows], pa.int64()), "text": [r[1] for r in rows],
                           "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), dims)})
    started = time.perf_counter()
    db = lancedb.connect(str(folder))
    table = db.create_table("chunks", table_data)
    table.create_index("text", config=FTS())
    ingest_s = time.perf_counter() - started
    times: dict[str, list[float]] = {"dense": [], "bm25": [], "hybrid": []}
    cpu: dict[str, list[float]] = {"dense": [], "bm25": [], "hybrid": []}
    for text, vector in queries:
        for mode in times:
            t, c = time.perf_counter(), time.process_time()  # process: LanceDB searches on its own threads
            if mode == "dense":
                table.search(vector).metric("cosine").limit(5).to_list()
            elif mode == "bm25":
                table.search(text, query_type="fts").limit(5).to_list()
            else:
                table.search(query_type="hybrid").vector(vector).text(text).limit(5).to_list()
            times[mode].append(time.perf_counter() - t)
            cpu[mode].append(time.process_time() - c)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return {"ingest_s": ingest_s, "bytes": size, **{f"{m}_ms_p50": p50(v) for m, v in times.items()},
            **{f"{m}_cpu_ms_p50": p50(v) for m, v in cpu.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic", type=int, default=100_000, help="chunks for the latency test")
    parser.add_argument("--no-lancedb", action="store_true")
    parser.add_argument("--no-bf16", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    configure_threads(args.threads)
    items = json.loads(QUESTIONS.read_text())
    answerable = {s: [i for i in items if i["topic"] and i["split"] == s] for s in ("tuning", "heldout")}
    unanswerable = {s: [i for i in items if not i["topic"] and i["split"] == s] for s in ("tuning", "heldout")}
    lines = [f"# benchmarks/rag.py — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             f"Machine: {platform.processor() or platform.machine()} (AMD EPYC, 2 cores, shared), load average at "
             f"start {os.getloadavg()[0]:.2f}; torch threads {args.threads}.", ""]

    def say(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    work = Path(tempfile.mkdtemp(prefix="llmp-rag-"))
    try:
        corpus = write_corpus(work / "docs")
        embedder = MiniLMEmbedder()
        kb = open_kb(work, embedder=embedder)
        report = kb.add([work / "docs"])
        ingest = report.chunks_per_s
        say(f"## Ingestion (float32, {args.threads} thread)\n\n{report.chunks} chunks of ≤256 tokens from "
            f"{len(report.added)} files in {report.seconds:.1f} s wall ({ingest:.1f} chunks/s), "
            f"{report.cpu_seconds:.1f} s CPU ({report.chunks / max(report.cpu_seconds, 1e-9):.1f} chunks/s of CPU)")

        say("\n## Recall@5 of the gold passage\n\n| split | questions | hybrid | dense | bm25 |\n"
            "| --- | --- | --- | --- | --- |")
        recalls: dict[tuple[str, str], float] = {}
        for split, qs in answerable.items():
            for mode in MODES:
                recalls[(split, mode)] = recall(kb, qs, mode)
            say(f"| {split} | {len(qs)} | " + " | ".join(f"{recalls[(split, m)]:.3f}" for m in MODES) + " |")

        pos = {s: [best_cosine(kb, i["question"]) for i in qs] for s, qs in answerable.items()}
        neg = {s: [best_cosine(kb, i["question"]) for i in qs] for s, qs in unanswerable.items()}
        threshold, accuracy = calibrate(pos["tuning"], neg["tuning"])
        held = pos["heldout"], neg["heldout"]
        held_acc = (sum(p >= ABSTAIN_BELOW for p in held[0]) + sum(n < ABSTAIN_BELOW for n in held[1])) / (
            len(held[0]) + len(held[1]))
        say(f"\n## Abstention threshold (best chunk's cosine)\n\nTuning split: best threshold {threshold:.3f} "
            f"(accuracy {accuracy:.3f}); answerable min {min(pos['tuning']):.3f}, unanswerable max "
            f"{max(neg['tuning']):.3f}. `ABSTAIN_BELOW` = {ABSTAIN_BELOW} on the held-out split: accuracy "
            f"{held_acc:.3f} ({sum(p < ABSTAIN_BELOW for p in held[0])}/{len(held[0])} answerable wrongly "
            f"abstained, {sum(n >= ABSTAIN_BELOW for n in held[1])}/{len(held[1])} unanswerable answered).")

        search_times, search_cpu = [], []
        for item in answerable["heldout"] + answerable["tuning"]:
            t, c = time.perf_counter(), time.thread_time()
            kb.search(item["question"], k=5)
            search_times.append(time.perf_counter() - t)
            search_cpu.append(time.thread_time() - c)
        search_p50 = p50(search_times)
        say(f"\nHybrid search on this base ({report.chunks} chunks), query embedding included: p50 {search_p50:.1f} ms "
            f"wall, {p50(search_cpu):.1f} ms CPU")

        if not args.no_bf16:
            texts = [h.text for h in kb.chunks_of("docs/string-methods.md")][:48]
            fast = MiniLMEmbedder(dtype="bfloat16")
            timings = {}
            for name, model in (("float32", embedder), ("bfloat16", fast)):
                t, c = time.perf_counter(), time.process_time()
                vectors = model.embed(texts)
                timings[name] = (len(texts) / (time.perf_counter() - t), len(texts) / (time.process_time() - c),
                                 vectors)
            cosine = float((timings["float32"][2] * timings["bfloat16"][2]).sum(1).min())
            kb16 = open_kb(work / "kb-bf16.sqlite3", embedder=fast)
            kb16.root = work
            rep16 = kb16.add([work / "docs"])
            r16 = {s: recall(kb16, qs, "hybrid") for s, qs in answerable.items()}
            say(f"\n## bfloat16 embedding (AVX512-BF16)\n\n{len(texts)} chunks: float32 {timings['float32'][0]:.1f} "
                f"chunks/s wall ({timings['float32'][1]:.1f}/s of CPU), bfloat16 {timings['bfloat16'][0]:.1f} wall "
                f"({timings['bfloat16'][1]:.1f}/s of CPU); min cosine to float32 {cosine:.4f}. Whole corpus in "
                f"bfloat16: {rep16.chunks_per_s:.1f} chunks/s wall, {rep16.chunks / max(rep16.cpu_seconds, 1e-9):.1f}"
                f"/s of CPU; hybrid recall@5 tuning {r16['tuning']:.3f}, held-out {r16['heldout']:.3f}.")
            kb16.close()

        rng = np.random.default_rng(0)
        questions = answerable["heldout"] + answerable["tuning"]
        queries = [(i["question"], embedder.embed([i["question"]])[0]) for i in questions]
        store, build_s = synthetic_store(work / "synthetic.sqlite3", args.synthetic, corpus, embedder.dimensions, rng)
        t = time.perf_counter()
        store.search("warm up", queries[0][1], k=5)  # loads the in-memory indexes once
        load_s = time.perf_counter() - t
        times: dict[str, list[float]] = {m: [] for m in (*MODES, "bruteforce")}
        cpu: dict[str, list[float]] = {m: [] for m in (*MODES, "bruteforce")}
        exact = 0
        matrix, ids = store._dense_matrix()
        for text, vector in queries:
            for mode in MODES:
                t, c = time.perf_counter(), time.thread_time()
                hits = store.search(text, vector, k=5, mode=mode)
                times[mode].append(time.perf_counter() - t)
                cpu[mode].append(time.thread_time() - c)
                if mode == "dense":
                    dense_ids = [h.chunk_id for h in hits]
            t, c = time.perf_counter(), time.thread_time()
            reference = ids[np.argsort(-(matrix @ vector))[:5]]  # exact brute force: every score, a full sort
            times["bruteforce"].append(time.perf_counter() - t)
            cpu["bruteforce"].append(time.thread_time() - c)
            exact += list(reference) == dense_ids
        at_100k = {m: p50(v) for m, v in times.items()}
        cpu_100k = {m: p50(v) for m, v in cpu.items()}
        size = store.size_bytes()
        say(f"\n## Search at {args.synthetic:,} synthetic chunks (query embedding excluded)\n\n"
            f"Built in {build_s:.1f} s ({args.synthetic / build_s:.0f} chunks/s, store only; in-memory indexes "
            f"loaded in {load_s:.1f} s), {size / 1e6:.0f} MB on disk. p50 over {len(queries)} queries, wall (CPU):\n")
        say("| hybrid | dense | bm25 | numpy brute force (scores + full argsort) |\n| --- | --- | --- | --- |")
        say("| " + " | ".join(f"{at_100k[m]:.1f} ms ({cpu_100k[m]:.1f})" for m in (*MODES, "bruteforce")) + " |")
        say(f"\nDense top-5 identical to brute force on {exact}/{len(queries)} queries.")
        if not args.no_lancedb:
            try:
                lance = lancedb_figures(store, queries, work / "lancedb")
                say(f"\nLanceDB {__import__('lancedb').__version__} on the same rows: table + FTS index built in "
                    f"{lance['ingest_s']:.1f} s, {lance['bytes'] / 1e6:.0f} MB; p50 wall (CPU of all its threads): "
                    f"dense (flat, exact) {lance['dense_ms_p50']:.1f} ms ({lance['dense_cpu_ms_p50']:.1f}), fts "
                    f"{lance['bm25_ms_p50']:.1f} ms ({lance['bm25_cpu_ms_p50']:.1f}), hybrid "
                    f"{lance['hybrid_ms_p50']:.1f} ms ({lance['hybrid_cpu_ms_p50']:.1f}).")
            except ImportError:
                say("\nLanceDB is not installed: no comparison this run (`pip install lancedb`).")
        store.close()
        kb.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    say(f"\nProcess CPU time {usage.ru_utime + usage.ru_stime:.0f} s; peak RSS {usage.ru_maxrss / 1024:.0f} MB; "
        f"load average at the end {os.getloadavg()[0]:.2f}.")
    result = (f"RESULT recall_at_5={recalls[('heldout', 'hybrid')]:.3f} ingest_chunks_per_s={ingest:.1f} "
              f"search_ms_p50={search_p50:.1f} search_ms_at_100k={at_100k['hybrid']:.1f} "
              f"vs_bruteforce={at_100k['hybrid'] / at_100k['bruteforce']:.2f}")
    say(f"\n{result}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(result)


if __name__ == "__main__":
    main()
