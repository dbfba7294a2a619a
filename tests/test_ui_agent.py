"""The Agent page through Streamlit's AppTest: a real run on the bundled model, its live steps, the answer,
and the recorded timeline from the workspace's agent.sqlite3."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import llm_playground.ui

pytestmark = pytest.mark.slow
APP = str(Path(llm_playground.ui.__file__).parent / "app.py")


def test_agent_page_runs_a_task_and_shows_its_timeline(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMP_HOME", str(tmp_path))
    monkeypatch.setenv("LLMP_THREADS", "1")
    at = AppTest.from_file(APP, default_timeout=240).run()
    at.switch_page("views/agent.py").run()
    assert not at.exception and at.title[0].value == "Agent"
    assert not at.dataframe  # no run recorded yet
    next(b for b in at.button if b.label == "Run").click().run()
    assert "the task is empty" in " ".join(e.value for e in at.error)
    at.text_area(key="agent_task").set_value("What day of the week is it today?")
    at.multiselect(key="agent_tools").set_value(["calculator", "clock"])
    at.radio(key="agent_answer").set_value("template")
    next(b for b in at.button if b.label == "Run").click().run()
    assert not at.exception and not at.error
    weekday = dt.datetime.now(dt.UTC).strftime("%A")
    shown = " ".join(m.value for m in at.markdown)
    assert "1. `clock`" in shown and "2. answer" in shown
    assert weekday in at.success[0].value
    [table] = at.dataframe
    assert list(table.value["tool"]) == ["clock", ""] and list(table.value["kind"]) == ["call", "answer"]
    assert (tmp_path / "agent.sqlite3").is_file()


def test_agent_page_keeps_its_task_across_pages(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMP_HOME", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("views/agent.py").run()
    at.text_area(key="agent_task").set_value("Add 2 and 3.")
    at.number_input(key="agent_max_steps").set_value(3).run()
    at.switch_page("views/models.py").run()
    at.switch_page("views/agent.py").run()
    assert not at.exception and not at.warning
    assert at.text_area(key="agent_task").value == "Add 2 and 3." and at.number_input(key="agent_max_steps").value == 3
    assert "calculator" in at.multiselect(key="agent_tools").value
