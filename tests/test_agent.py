"""The agent: the safe calculator, tool schemas from Python, tools that fail, the run store, and the loop on
the real bundled model."""

from __future__ import annotations

import datetime as dt
import sqlite3
import textwrap
import time
from typing import Literal

import pytest

from llm_playground.agent import Agent, RunStore, Tool, run_tool, select_tools
from llm_playground.agent.calculator import CalculatorError, calculate
from llm_playground.agent.pytools import spec_from_function
from llm_playground.agent.records import MIGRATIONS
from llm_playground.agent.step import called_tools, results_text, template_messages
from llm_playground.agent.tools import builtin_tools, module_tools
from llm_playground.errors import InputError
from llm_playground.migrations import migrate


@pytest.mark.parametrize(("expression", "value"), [
    ("17 * 23", 391), ("(45 + 55) / 4", 25), ("2 ** 10", 1024), ("-3 + 1.5", -1.5), ("sqrt(16) + 1", 5),
    ("7 // 2 + 7 % 2", 4), ("2^3", 8), ("round(pi, 2)", 3.14), ("max(3, 9, 4)", 9)])
def test_calculator_evaluates_arithmetic(expression, value):
    assert calculate(expression) == pytest.approx(value)


@pytest.mark.parametrize(("expression", "fragment"), [
    ("__import__('os').system('true')", "not arithmetic"), ("open('x')", "not arithmetic"),
    ("1 / 0", "division by zero"), ("9 ** 9 ** 9", "too large"), ("", "empty"), ("2 +", "not an arithmetic"),
    ("'a' * 3", "not arithmetic"), ("(1).real", "not arithmetic"), ("sqrt(-1)", "sqrt"),
    # big ints hold the GIL and cannot be printed past 4300 digits: refused before they are computed
    ("(9 ** 1000) ** 1000", "too large"), ("9**1000 * 9**1000 * 9**1000 * 9**1000 * 9**1000", "too large"),
    ("sqrt(10 ** 400)", "too large")])
def test_calculator_refuses_everything_else(expression, fragment):
    with pytest.raises(CalculatorError, match=fragment.replace("(", r"\(")):
        calculate(expression)


def test_schemas_from_type_hints_and_docstrings():
    def convert(amount: float, unit: Literal["km", "mi"] = "km", tags: list[str] | None = None) -> float:
        """Convert a distance to metres.

        Args:
            amount: the distance
            unit: its unit
        """
        return amount

    spec = spec_from_function(convert)
    assert spec.name == "convert" and spec.description == "Convert a distance to metres."
    assert spec.required == ["amount"]
    assert spec.properties["amount"] == {"type": "number", "description": "the distance"}
    assert spec.properties["unit"]["enum"] == ["km", "mi"] and "title" not in spec.properties["unit"]
    assert spec.properties["tags"]["anyOf"][0] == {"items": {"type": "string"}, "type": "array"}

    def untyped(x):
        return x

    with pytest.raises(InputError, match="'x' has no type hint"):
        spec_from_function(untyped)


def test_builtin_tools_and_selection():
    tools = builtin_tools()
    assert {"calculator", "clock", "fn_add_numbers", "fn_greet"} <= set(tools)
    assert tools["calculator"].spec.required == ["expression"] and tools["clock"].spec.properties == {}
    assert [t.name for t in select_tools(["calculator", "clock"])] == ["calculator", "clock"]
    with pytest.raises(InputError, match="unknown tool 'weather'"):
        select_tools(["weather"])


def test_module_tools_and_modules_that_fail(tmp_path):
    good = tmp_path / "mytools.py"
    good.write_text(textwrap.dedent('''
        def shout(text: str) -> str:
            """Upper-case a text."""
            return text.upper()

        def _helper() -> None:
            pass
    '''))
    tools = module_tools(good)
    assert list(tools) == ["shout"] and tools["shout"].spec.description == "Upper-case a text."
    assert run_tool(tools["shout"], {"text": "hi"}).text == "HI"
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    with pytest.raises(InputError, match="failed to import: ModuleNotFoundError"):
        select_tools(["builtin"], [broken])


def test_tool_errors_and_timeouts_become_results():
    calculator = builtin_tools()["calculator"]
    failed = run_tool(calculator, {"expression": "1/0"})
    assert failed.error == "CalculatorError: division by zero" and failed.text.startswith("error: ")

    def slow() -> str:
        """Sleep."""
        time.sleep(5)
        return "late"

    timed_out = run_tool(Tool(spec_from_function(slow), slow, timeout_s=0.2), {})
    assert timed_out.error == "timed out after 0.2 s" and timed_out.ms < 2000
    assert run_tool(calculator, {"wrong": 1}).error.startswith("TypeError")

    def huge() -> int:
        """A number json cannot write."""
        return 10 ** 5000

    assert run_tool(Tool(spec_from_function(huge), huge), {}).error.startswith("ValueError: Exceeds the limit")


def test_conversation_helpers():
    messages = [{"role": "user", "content": "What is 2+3?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function",
                     "function": {"name": "calculator", "arguments": '{"expression": "2+3"}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "5"}]
    assert called_tools(messages) == {"calculator"}
    assert called_tools([*messages, {"role": "user", "content": "and now?"}]) == set()
    assert template_messages(messages)[1] == {"role": "assistant",
                                              "content": '{"name":"calculator","parameters":{"expression":"2+3"}}'}
    assert results_text(messages) == '- calculator({"expression": "2+3"}) → 5'


def test_run_store_migrates_a_version_1_file_and_refuses_a_newer_one(tmp_path):
    path = tmp_path / "agent.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    migrate(old, MIGRATIONS[:1], label="old")
    old.execute("INSERT INTO runs (started, task, model, tools, status) VALUES ('2026-01-01', 't', 'm', '[]', 'x')")
    old.close()
    store = RunStore(path)
    [run] = store.runs()
    assert run.task == "t" and run.answer_mode is None
    store.finish(run.id, status="answered", answer="a", answer_mode="model", ms=1.0)
    assert store.get(run.id).answer_mode == "model"
    store.close()
    newer = sqlite3.connect(path, isolation_level=None)
    newer.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    newer.close()
    with pytest.raises(InputError, match="newer than this version"):
        RunStore(path)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 200)
    with pytest.raises(InputError, match="is not an agent runs file"):
        RunStore(junk)


@pytest.mark.slow
def test_agent_calls_the_clock_and_answers_from_it(smollm2, tmp_path):
    store = RunStore(tmp_path / "agent.sqlite3")
    agent = Agent(smollm2, select_tools(["calculator", "clock"]), answer="template", store=store)
    run = agent.run("What day of the week is it today?")
    weekday = dt.datetime.now(dt.UTC).strftime("%A")
    assert run.status == "answered" and [s.tool for s in run.calls] == ["clock"]
    assert weekday in run.answer and run.answer_mode == "template"
    record = store.get(run.run_id)
    assert [s.kind for s in record.timeline] == ["call", "answer"] and record.status == "answered"
    assert record.timeline[0].arguments == {} and weekday in record.timeline[0].result
    assert record.prompt_tokens > 0 and record.steps == 2 and record.ms > 0


@pytest.mark.slow
def test_a_failing_tool_is_a_result_and_the_step_limit_ends_a_run(smollm2, tmp_path):
    clock = builtin_tools()["clock"]

    def broken() -> str:
        raise RuntimeError("the clock battery is flat")

    agent = Agent(smollm2, [Tool(clock.spec, broken)], max_steps=1)
    run = agent.run("What day of the week is it today?")
    assert run.status == "max_steps" and run.answer is None
    [step] = run.steps
    assert step.error == "RuntimeError: the clock battery is flat" and step.result.startswith("error:")
    with pytest.raises(InputError, match="max-steps"):
        Agent(smollm2, [clock], max_steps=0)


@pytest.mark.slow
def test_kb_search_tool_reads_the_workspace_knowledge_base(tmp_path):
    from llm_playground.agent.kb import kb_tool
    from llm_playground.knowledge import open_kb
    from llm_playground.workspace import Workspace

    workspace = Workspace(tmp_path)
    with pytest.raises(InputError, match="no knowledge base"):
        kb_tool(workspace)
    notes = tmp_path / "notes.md"
    notes.write_text("# Lighthouse\n\nThe Varden lighthouse was built in 1871 from granite blocks.\n\n"
                     "# Bakery\n\nThe bakery on Mill Street sells rye bread every morning.\n")
    open_kb(workspace).add([notes])
    tool = kb_tool(workspace)
    assert tool.name == "kb_search" and tool.spec.required == ["query"]
    result = run_tool(tool, {"query": "When was the lighthouse built?"})
    assert result.error is None and result.text.startswith("[1] notes.md: ") and "1871" in result.text
