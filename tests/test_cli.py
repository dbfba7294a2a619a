"""`llmp` as a user runs it: a real process, real model, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def llmp(*args: str, stdin: str | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLMP_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "llm_playground.cli.main", *args], input=stdin,
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_generate_streams_paris_and_reports_stats():
    run = llmp("generate", "What is the capital of France?", "--greedy", "--max-new-tokens", "20")
    assert run.returncode == 0, run.stderr
    assert "Paris" in run.stdout
    assert "tokens/s" in run.stderr


def test_generate_json_and_stdin_prompt():
    run = llmp("generate", "-", "--raw", "--greedy", "--max-new-tokens", "6", "--json",
               stdin="The capital of France is")
    assert run.returncode == 0, run.stderr
    payload = json.loads(run.stdout)
    [result] = payload["results"]
    assert "Paris" in result["text"] and result["finish_reason"] in ("length", "eos", "stop")
    assert result["completion_tokens"] == len(result["token_ids"]) and result["prefill_ms"] > 0


def test_stop_string_and_n_sequences():
    run = llmp("generate", "Count: 1, 2, 3,", "--raw", "--temperature", "0.8", "--seed", "1", "--n", "2",
               "--stop", "6", "--max-new-tokens", "20", "--json")
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout)["results"]
    assert len(results) == 2
    assert all("6" not in r["text"] for r in results)


@pytest.mark.parametrize("args, message", [
    (["--model", "nope"], "unknown model"),
    (["--temperature", "-1"], "temperature"),
    (["--top-p", "0"], "top_p"),
    (["--top-p", "1.5"], "top_p"),
    (["--top-k", "-1"], "top_k"),
    (["--min-p", "2"], "min_p"),
    (["--max-new-tokens", "0"], "max_new_tokens"),
    (["--n", "0"], "n:"),
    (["--threads", "0"], "threads"),
    (["--dtype", "float8"], "dtype"),
])
def test_bad_options_get_one_line_and_status_2(args, message, monkeypatch, capsys):
    """In this process (`main()` as the entry point calls it): ten more interpreters would cost ~40 s of
    imports and prove nothing the real process below does not."""
    from llm_playground.cli import main as cli

    monkeypatch.setattr(sys, "argv", ["llmp", "generate", "hello", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exited:
        cli.main()
    stderr = capsys.readouterr().err
    assert exited.value.code == 2, stderr
    assert message in stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1


def test_a_bad_option_in_a_real_process_is_one_line_and_status_2():
    run = llmp("generate", "hello", "--top-p", "1.5")
    assert run.returncode == 2 and "top_p" in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_empty_and_too_long_prompts():
    empty = llmp("generate", "   ")
    assert empty.returncode == 2 and "empty" in empty.stderr and "Traceback" not in empty.stderr
    long_text = "word " * 9000
    too_long = llmp("generate", "-", "--raw", stdin=long_text)
    assert too_long.returncode == 2 and "context" in too_long.stderr and "Traceback" not in too_long.stderr
    # `--context-policy truncate` is tested in tests/test_loop_unit.py
    # (test_prompt_too_long_is_left_truncated_under_truncate_policy): here it cost an 8,192-token prefill,
    # the slowest test of the suite (212 s on 2 loaded cores).


def test_trace_and_replay_round_trip(tmp_path):
    trace = tmp_path / "run.jsonl"
    run = llmp("generate", "Tell me a story", "--temperature", "0.9", "--seed", "3", "--max-new-tokens", "16",
               "--trace", str(trace))
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["params"]["seed"] == 3
    step = lines[1]
    assert {"step", "token_id", "token", "prob", "top", "ms"} <= step.keys() and len(step["top"]) == 5
    replay = llmp("replay", str(trace))
    assert replay.returncode == 0 and "match" in replay.stdout, replay.stdout + replay.stderr
    lines[3]["token_id"] = (lines[3]["token_id"] + 1) % 1000
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(json.dumps(line) for line in lines))
    mismatch = llmp("replay", str(tampered))
    assert mismatch.returncode == 1 and "mismatch" in mismatch.stdout


def test_unreadable_trace_files(tmp_path):
    missing = llmp("replay", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("this is not json\n")
    bad = llmp("replay", str(garbage))
    assert bad.returncode == 2 and "JSON Lines" in bad.stderr and "Traceback" not in bad.stderr


def test_tokenize_and_models():
    run = llmp("tokenize", "Hello world, tokenizers!", "--json")
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["tokens"] == len(data["ids"]) > 2 and data["characters_per_token"] > 1
    models = llmp("models", "--json")
    assert models.returncode == 0, models.stderr
    [entry] = [m for m in json.loads(models.stdout) if m["name"] == "smollm2"]
    assert entry["parameters"] > 100e6 and entry["vocab_size"] == 49152 and entry["context_length"] == 8192


def test_chat_session_with_commands(tmp_path):
    (tmp_path / "afile").write_text("x")
    script = "What is the capital of France?\n/params temperature=0\n/params top_p=7\nAnd of Italy?\n" \
             f"/save {tmp_path / 'afile' / 'chat.json'}\n/save {tmp_path / 'chat.json'}\n/quit\n"
    run = llmp("chat", "--greedy", "--max-new-tokens", "24", stdin=script)
    assert run.returncode == 0, run.stderr
    assert "Paris" in run.stdout
    assert "top_p" in run.stderr  # the bad /params value is reported and the chat goes on
    assert "cannot write /save" in run.stderr and "unexpected" not in run.stderr  # and so is a bad /save path
    saved = json.loads((tmp_path / "chat.json").read_text())
    assert [m["role"] for m in saved["messages"]] == ["user", "assistant", "user", "assistant"]


def test_call_with_and_without_the_adapter(tmp_path):
    prompt = "Replace all digits in 'room 404 floor 7' with N"
    plain = llmp("call", prompt, "--adapter", "none", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["name"] == "fn_substitute_string_with_regex"
    adapted = llmp("call", prompt, "--output", "out/one.json", cwd=tmp_path)
    assert json.loads(adapted.stdout)["parameters"]["regex"] == r"\d+"
    assert json.loads((tmp_path / "out" / "one.json").read_text()) == [json.loads(adapted.stdout)]
    missing = llmp("call", prompt, "--adapter", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.returncode == 2 and "is not an adapter" in missing.stderr and "Traceback" not in missing.stderr


def test_unwritable_output_paths_and_empty_inputs_stop_before_any_work(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "empty.json").write_text("[]")
    for args, message in [(["call", "hi", "--trace", str(tmp_path / "afile" / "t.jsonl")], "cannot write --trace"),
                          (["call", "--input", str(tmp_path / "empty.json")], "nothing to do")]:
        run = llmp(*args, cwd=tmp_path)
        assert run.returncode == 2 and message in run.stderr, run.stderr
        lines = run.stderr.strip().splitlines()  # a first-run note may come before the one-line error
        assert "unexpected" not in run.stderr and lines[-1].startswith("error:") and message in lines[-1]
