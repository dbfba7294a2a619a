"""`llmp agent` and `llmp runs` as a user runs them: one real process end to end, the rest in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from llm_playground.cli.main import main

pytestmark = pytest.mark.slow


def llmp_here(args: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """`llmp ARGS` in this process (saves a process's imports): exit status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["llmp", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def test_agent_end_to_end_then_runs_and_timeline(tmp_path, monkeypatch, capsys):
    env = {**os.environ, "LLMP_THREADS": "1", "COLUMNS": "200", "LLMP_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "llm_playground.cli.main", "agent", "What day of the week is it?",
                          "--tools", "calculator,clock", "--answer", "template", "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["status"] == "answered" and result["answer_mode"] == "template"
    assert [s["tool"] for s in result["steps"]] == ["clock", None] and "UTC" in result["answer"]
    monkeypatch.setenv("LLMP_HOME", str(tmp_path))
    status, out, _ = llmp_here(["runs"], monkeypatch, capsys)
    assert status == 0 and "What day of the week is it?" in out and "answered" in out
    status, out, _ = llmp_here(["runs", "show", str(result["run_id"])], monkeypatch, capsys)
    assert status == 0 and "clock" in out and "answer (template): It is now" in out
    status, _, err = llmp_here(["runs", "show", "999"], monkeypatch, capsys)
    assert status == 2 and "no agent run 999" in err


@pytest.mark.parametrize(("args", "message"), [
    (["--tools", "weather"], "unknown tool 'weather'"),
    (["--tools", "missing.py"], "tool module missing.py not found"),
    (["--tools", "broken.py"], "failed to import: SyntaxError"),
    (["--max-steps", "0"], "--max-steps must be at least 1"),
    (["--answer", "poem"], "unknown answer mode 'poem'"),
])
def test_bad_agent_input_gets_one_line_and_status_2(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMP_HOME", str(tmp_path))
    (tmp_path / "broken.py").write_text("def f(:\n")
    status, _, err = llmp_here(["agent", "What is 2+2?", *args], monkeypatch, capsys)
    assert status == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_runs_before_any_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LLMP_HOME", str(tmp_path))
    status, _, err = llmp_here(["runs"], monkeypatch, capsys)
    assert status == 2 and "no agent runs yet" in err
