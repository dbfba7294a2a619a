"""Agent benchmark: does the loop call the right tools, skip tools when none is needed, and answer right?

    .venv/bin/python benchmarks/agent.py [--limit N] [--threads N]

Nineteen tasks of our own (never the course's prompts, and none of the phrasings the loop's rules were
developed on, see docs/agent.md): 6 need no tool, 9 need one, 4 need two, over the built-in tools
(calculator, clock, the five course functions). Per task: the tools called (right_tool: the set of tools
matches one of the accepted sets; for one-call tasks some tasks accept either of two tools), the final
answer (answer_right: every expected value appears in it; numbers compared as numbers) and whether a
no-tool task called nothing (no_call_right). The final answer is scored both ways: written by the model
(`--answer model`) and with the template for one-call scalar results (`--answer template`: the same run's
calls, the template computed from them). The reference in the same run is `call_functions` alone with
`tool_choice="auto"` (the grammar allows "no call"), the first step only: how often it calls nothing
when nothing is needed and picks the right tool otherwise.
Ends with `RESULT right_tool=<x> answer_right_model=<a> answer_right_template=<b> no_call_right=<c>
no_call_right_reference=<r> right_tool_reference=<t> seconds_per_task=<s>`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import time
from pathlib import Path

from llm_playground.agent import Agent, select_tools
from llm_playground.agent.answer import templated_answer
from llm_playground.functions import call_functions
from llm_playground.model import load_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/agent.md"
CALC = {"calculator"}


def today() -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    return {"date": now.strftime("%Y-%m-%d"), "weekday": now.strftime("%A")}


def tasks() -> list[dict]:
    """(task, accepted tool sets, expected values). `{date}`/`{weekday}` are filled in at run time."""
    return [
        # no tool
        {"task": "Who painted the Mona Lisa?", "tools": [set()], "expect": ["leonardo|vinci"]},
        {"task": "Which planet is known as the Red Planet?", "tools": [set()], "expect": ["mars"]},
        {"task": "What is the largest ocean on Earth?", "tools": [set()], "expect": ["pacific"]},
        {"task": "Name the author of the novel Pride and Prejudice.", "tools": [set()], "expect": ["austen"]},
        {"task": "In which country is the city of Kyoto?", "tools": [set()], "expect": ["japan"]},
        {"task": "What gas do plants absorb from the air?", "tools": [set()], "expect": ["carbon dioxide|co2"]},
        # one tool
        {"task": "Calculate 348 multiplied by 12.", "tools": [CALC], "expect": [4176]},
        {"task": "How much is 1250 divided by 5?", "tools": [CALC], "expect": [250]},
        {"task": "What's 2 to the power of 12?", "tools": [CALC], "expect": [4096]},
        {"task": "Tell me today's date.", "tools": [{"clock"}], "expect": ["{date}"]},
        {"task": "Which weekday is it right now?", "tools": [{"clock"}], "expect": ["{weekday}"]},
        {"task": "Please write the text 'stressed' backwards.", "tools": [{"fn_reverse_string"}],
         "expect": ["desserts"]},
        {"task": "What is the square root of 729?", "tools": [{"fn_get_square_root"}, CALC], "expect": [27]},
        {"task": "Add 19.5 and 30.25.", "tools": [{"fn_add_numbers"}, CALC], "expect": [49.75]},
        {"task": "Send a greeting to Priyanka.", "tools": [{"fn_greet"}], "expect": ["priyanka"]},
        # two tools
        {"task": "What is today's date, and what is 64 times 3?", "tools": [{"clock", "calculator"}],
         "expect": ["{date}", 192]},
        {"task": "Reverse the word 'drawer' and also tell me the square root of 144.",
         "tools": [{"fn_reverse_string", "fn_get_square_root"}, {"fn_reverse_string", "calculator"}],
         "expect": ["reward", 12]},
        {"task": "Greet Tomasz, then add 7 and 8.",
         "tools": [{"fn_greet", "fn_add_numbers"}, {"fn_greet", "calculator"}], "expect": ["tomasz", 15]},
        {"task": "What day of the week is it, and what is 1000 minus 1?", "tools": [{"clock", "calculator"}],
         "expect": ["{weekday}", 999]},
    ]


def has_value(answer: str, expected: object, filled: dict[str, str]) -> bool:
    text = (answer or "").lower()
    if isinstance(expected, int | float):
        numbers = [float(n.replace(",", "")) for n in re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)]
        return any(abs(n - expected) < 1e-6 for n in numbers)
    pattern = str(expected).format(**filled).lower()
    return any(option in text for option in pattern.split("|"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="run only the first N tasks of each kind")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    model = load_model("smollm2", threads=args.threads)
    tools = select_tools()
    specs = [t.spec for t in tools]
    agent = Agent(model, tools, answer="model")
    chosen = tasks()
    if args.limit:
        chosen = [t for n in (0, 1, 2) for t in [t for t in chosen if len(min(t["tools"], key=len)) == n][:args.limit]]
    filled = today()
    rows = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for item in chosen:
        start, cpu = time.perf_counter(), time.process_time()
        run = agent.run(item["task"])
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        called = [s.tool for s in run.calls]
        ok_calls = [s for s in run.calls if s.error is None]
        template = None
        if len(run.calls) == 1 and ok_calls:
            template = templated_answer(ok_calls[0].tool or "", ok_calls[0].arguments or {}, ok_calls[0].value)
        model_answer = run.answer or ""
        template_answer = template if template is not None else model_answer
        needed = len(min(item["tools"], key=len))
        row = {"task": item["task"], "needed": needed, "called": called, "status": run.status,
               "right_tool": set(called) in item["tools"] and len(called) == len(set(called)),
               "answer_model": all(has_value(model_answer, e, filled) for e in item["expect"]),
               "answer_template": all(has_value(template_answer, e, filled) for e in item["expect"]),
               "seconds": seconds, "cpu_seconds": cpu_seconds, "answer": model_answer, "template": template,
               "arguments": [s.arguments for s in run.calls], "results": [s.result for s in run.calls]}
        reference = call_functions(model, [{"role": "user", "content": item["task"]}], specs, tool_choice="auto")
        ref_called = {c.name for c in reference.calls}
        row["ref_no_call"] = not ref_called
        row["ref_right_tool"] = any(ref_called and ref_called <= accepted for accepted in item["tools"]) \
            if needed else not ref_called
        rows.append(row)
        print(f"{'✓' if row['right_tool'] else '✗'} {item['task']!r}: {called} → {model_answer[:70]!r}"
              f"{' | template: ' + repr(template) if template else ''} ({seconds:.1f} s)", flush=True)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    tool_rows = [r for r in rows if r["needed"]]
    none_rows = [r for r in rows if not r["needed"]]

    def share(values: list[bool]) -> float:
        return round(sum(values) / len(values), 3) if values else 0.0

    summary = {
        "right_tool": share([r["right_tool"] for r in tool_rows]),
        "answer_right_model": share([r["answer_model"] for r in rows]),
        "answer_right_template": share([r["answer_template"] for r in rows]),
        "no_call_right": share([r["right_tool"] for r in none_rows]),
        "no_call_right_reference": share([r["ref_no_call"] for r in none_rows]),
        "right_tool_reference": share([r["ref_right_tool"] for r in tool_rows]),
        "seconds_per_task": round(sum(r["seconds"] for r in rows) / len(rows), 1),
    }
    by_kind = {n: (share([r["right_tool"] for r in rows if r["needed"] == n]),
                   share([r["answer_model"] for r in rows if r["needed"] == n]),
                   share([r["answer_template"] for r in rows if r["needed"] == n])) for n in (0, 1, 2)}
    load = os.getloadavg()
    lines = [
        "# Agent benchmark (`benchmarks/agent.py`)", "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.processor() or platform.machine()}"
        f" ({os.cpu_count()} cores, shared: load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}); "
        "1 torch thread",
        "- model: SmolLM2-135M-Instruct (bundled), greedy; tools: calculator, clock, the five course functions",
        f"- {len(rows)} tasks ({len(none_rows)} need no tool, {sum(r['needed'] == 1 for r in rows)} one, "
        f"{sum(r['needed'] == 2 for r in rows)} two); wall {wall:.0f} s, CPU {cpu:.0f} s "
        f"(the reference's calls included)", "",
        "| tools needed | right tools | answer right (model) | answer right (template) |", "| --- | --- | --- | --- |",
        *[f"| {n} | {a} | {b} | {c} |" for n, (a, b, c) in by_kind.items()], "",
        f"Reference (`call_functions`, tool_choice auto, first step): no_call_right "
        f"{summary['no_call_right_reference']} (loop: {summary['no_call_right']}), right tool "
        f"{summary['right_tool_reference']} (loop, all steps: {summary['right_tool']}).", "",
        "| task | called | arguments → results | answer (model) | template | s |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {r['task']} | {', '.join(r['called']) or '—'} | "
          f"{'; '.join(f'{a} → {str(x)[:40]}' for a, x in zip(r['arguments'], r['results'], strict=True))} | "
          f"{' '.join(r['answer'].split())[:90]} | {r['template'] or ''} | {r['seconds']:.1f} |" for r in rows], "",
        "RESULT " + " ".join(f"{k}={v}" for k, v in summary.items()), ""]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print(f"wall {wall:.0f} s, CPU {cpu:.0f} s → {RESULTS.relative_to(ROOT)}")
    print("RESULT " + " ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
