"""API server benchmark: many concurrent streamed clients, and one client against the engine called directly.

    .venv/bin/python benchmarks/serve.py [--clients 32] [--requests 5] [--out benchmarks/results/serve.md]

The server is `llmp serve` in a subprocess (1 torch thread, request log on, as a user runs it); this
process is the clients (httpx, one thread each) and, for the reference answers and the direct
timing, the engine itself (1 thread). Every request has its own prompt and seed, and its streamed text
must equal what the engine gives for that prompt and seed, so a stream carrying another request's
tokens is caught. The last line is
`RESULT failures=<n> mixed_streams=<n> server_vs_direct=<ratio> ttft_p99_ms=<ms>`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2"
LONG_PROMPT = "Write a long story about a dragon who learns to bake bread."


def messages_for(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Request {i}: write one sentence about the number {i}."}]


@dataclass
class StreamOutcome:
    text: str = ""
    ttft_ms: float | None = None
    total_ms: float = 0.0
    tokens: int = 0
    done: bool = False
    finish_reason: str | None = None
    ids: set[str] = field(default_factory=set)
    error: str | None = None


def stream_chat(http: httpx.Client, url: str, body: dict) -> StreamOutcome:
    outcome, parts = StreamOutcome(), []
    start = time.perf_counter()
    try:
        with http.stream("POST", f"{url}/v1/chat/completions", json={**body, "stream": True,
                                                                     "stream_options": {"include_usage": True}}) as r:
            if r.status_code != 200:
                r.read()
                outcome.error = f"HTTP {r.status_code}: {r.text[:200]}"
                return outcome
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    outcome.done = True
                    break
                chunk = json.loads(line[6:])
                outcome.ids.add(chunk["id"])
                if chunk.get("usage"):
                    outcome.tokens = chunk["usage"]["completion_tokens"]
                for choice in chunk["choices"]:
                    content = choice["delta"].get("content")
                    if content:
                        outcome.ttft_ms = outcome.ttft_ms or (time.perf_counter() - start) * 1000
                        parts.append(content)
                    outcome.finish_reason = choice.get("finish_reason") or outcome.finish_reason
    except (httpx.HTTPError, json.JSONDecodeError, KeyError) as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.total_ms = (time.perf_counter() - start) * 1000
    outcome.text = "".join(parts)
    return outcome


def start_server(home: Path, batch: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "LLMP_THREADS": "1", "LLMP_HOME": str(home), "LLMP_API_KEY": "",
           "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([sys.executable, "-m", "llm_playground.cli.main", "serve", "--port", str(port),
                                "--batch", str(batch)],
                               env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start in 180 s")
        time.sleep(0.2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def run(args: argparse.Namespace) -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from llm_playground.generate import Generation, SamplingParams
    from llm_playground.generate.prompt import render
    from llm_playground.model import load_model

    model = load_model(MODEL, threads=1)

    def direct(messages: list[dict[str, str]], params: SamplingParams) -> tuple[str, int, float]:
        start = time.perf_counter()
        generation = Generation(model, model.tokenizer.encode(render(model.tokenizer, messages)), params)
        for _ in generation:
            pass
        result = generation.results[0]
        return result.text, result.completion_tokens, (time.perf_counter() - start) * 1000

    total = args.clients * args.requests
    print(f"reference answers from the engine for {total} requests ...", file=sys.stderr)
    expected = [direct(messages_for(i), SamplingParams.create(max_new_tokens=args.max_tokens, temperature=0.8,
                                                              seed=i))[0] for i in range(total)]
    load_before = os.getloadavg()
    home = Path(tempfile.mkdtemp(prefix="llmp-bench-serve-"))
    process, url = start_server(home, args.batch)
    lines: list[str] = []
    try:
        http = httpx.Client(timeout=600)
        # One client, alternating with the engine called directly: same prompt, params and token count.
        long_messages = [{"role": "user", "content": LONG_PROMPT}]
        long_params = SamplingParams.create(max_new_tokens=args.single_tokens, temperature=0.8, seed=1)
        stream_chat(http, url, {"model": MODEL, "messages": long_messages, "max_tokens": 4})  # warm-up
        direct_rates, server_rates = [], []
        for _ in range(args.single_reps):
            _, tokens, ms = direct(long_messages, long_params)
            direct_rates.append(tokens / ms * 1000)
            outcome = stream_chat(http, url, {"model": MODEL, "messages": long_messages, "seed": 1,
                                              "temperature": 0.8, "max_tokens": args.single_tokens})
            server_rates.append(outcome.tokens / outcome.total_ms * 1000)
        ratio = statistics.median(server_rates) / statistics.median(direct_rates)

        print(f"{args.clients} clients x {args.requests} streamed requests ...", file=sys.stderr)
        outcomes: dict[int, StreamOutcome] = {}

        def client(c: int) -> None:
            with httpx.Client(timeout=600) as own:
                for r in range(args.requests):
                    i = c * args.requests + r
                    outcomes[i] = stream_chat(own, url, {"model": MODEL, "messages": messages_for(i), "seed": i,
                                                         "temperature": 0.8, "max_tokens": args.max_tokens})

        start = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    load_after = os.getloadavg()

    failures = [i for i, o in outcomes.items() if o.error or not o.done or not o.finish_reason or len(o.ids) != 1]
    mixed = [i for i, o in outcomes.items() if i not in failures and o.text != expected[i]]
    failures += [i for i in range(total) if i not in outcomes]
    ttfts = [o.ttft_ms for o in outcomes.values() if o.ttft_ms is not None]
    tokens = sum(o.tokens for o in outcomes.values())
    now = dt.datetime.now(dt.UTC)
    lines += [
        f"SmolLM2-135M-Instruct, float32, 1 torch thread in the server; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; Python {platform.python_version()}; {now:%Y-%m-%d %H:%M} UTC. "
        f"Load average before/after: {', '.join(f'{x:.2f}' for x in load_before)} / "
        f"{', '.join(f'{x:.2f}' for x in load_after)}.",
        "",
        f"**Concurrency** (server `--batch {args.batch}`): {args.clients} clients × {args.requests} streamed chat "
        f"requests "
        f"(each its own prompt and seed, temperature 0.8, max_tokens {args.max_tokens}), all at once.",
        "",
        "| requests | failures | mixed streams | wall s | completion tokens | tokens/s | TTFT p50 ms | TTFT p99 ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {total} | {len(failures)} | {len(mixed)} | {wall:.1f} | {tokens} | {tokens / wall:.1f} | "
        f"{percentile(ttfts, 50):.0f} | {percentile(ttfts, 99):.0f} |",
        "",
        f"**One client**: a chat answer of {args.single_tokens} tokens (temperature 0.8, seed 1), streamed through the "
        f"server vs the engine called directly in this process (`Generation`, template and tokenization "
        f"included), alternating, median of {args.single_reps}: "
        f"server {statistics.median(server_rates):.1f} tokens/s, direct {statistics.median(direct_rates):.1f} "
        f"tokens/s, ratio **{ratio:.2f}** (server: request sent → last token, so its prefill, HTTP and SSE count).",
    ]
    for i in (failures + mixed)[:5]:
        o = outcomes.get(i)
        same = len(os.path.commonprefix([o.text, expected[i]])) if o else 0
        lines.append(f"- request {i}: {o.error or 'text differs' if o else 'missing'} (first {same} characters "
                     f"agree); got {o.text if o else ''!r}, expected {expected[i]!r}")
    lines += ["", f"**`RESULT failures={len(failures)} mixed_streams={len(mixed)} server_vs_direct={ratio:.2f} "
                  f"ttft_p99_ms={percentile(ttfts, 99):.0f}`**"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=5, help="streamed requests per client, one after another")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--single-tokens", type=int, default=64)
    parser.add_argument("--single-reps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=1, help="the server's --batch (1: no continuous batching)")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) here")
    args = parser.parse_args()
    report = run(args)
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report + "\n", encoding="utf-8")
    result = report.rsplit("**`", 1)[1].rstrip("`*")
    print(result)


if __name__ == "__main__":
    main()
