"""`llmp train`, `eval`, `export` and DDP as a user runs them: real processes on a real workspace."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from gpt_helpers import make_workspace

from llm_playground.train.metrics import read_metrics

pytestmark = pytest.mark.slow
TINY = ["--set", "n_layer=2", "--set", "n_head=2", "--set", "n_embd=32", "--set", "block_size=32",
        "--set", "batch_size=4", "--set", "eval_iters=2", "--set", "sample_tokens=8", "--set", "log_interval=1"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return make_workspace(tmp_path_factory.mktemp("cli"), chars=120_000, vocab_size=400)


def _env(workspace) -> dict[str, str]:
    return {**os.environ, "LLMP_THREADS": "1", "LLMP_HOME": str(workspace.root), "COLUMNS": "200"}


def llmp(workspace, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llm_playground.cli.main", *args], capture_output=True, text=True,
                          env=_env(workspace), cwd=workspace.root, timeout=300)


def test_train_eval_generate_export(workspace, tmp_path):
    run = llmp(workspace, "train", *TINY, "--set", "max_iters=8", "--set", "eval_interval=4", "--out", "runs/cli")
    assert run.returncode == 0, run.stderr
    assert "step 8: train loss" in run.stderr and "llmp generate --model runs/cli" in run.stderr
    again = llmp(workspace, "train", *TINY, "--out", "runs/cli")
    assert again.returncode == 2 and "already holds a run" in again.stderr and "--resume" in again.stderr
    more = llmp(workspace, "train", "--resume", "--set", "max_iters=10", "--out", "runs/cli")
    assert more.returncode == 0, more.stderr
    assert "from step 8" in more.stderr  # --resume says where it continues
    assert [r["step"] for r in read_metrics(workspace.run_dir("cli") / "metrics.jsonl")][-1] == 10
    ppl = llmp(workspace, "eval", "perplexity", "--model", "runs/cli", "--text", "To be, or not to be " * 20, "--json")
    assert ppl.returncode == 0, ppl.stderr
    figures = json.loads(ppl.stdout)
    assert figures["windows"] > 1 and 1 < figures["perplexity"] < 1000
    gen = llmp(workspace, "generate", "--model", "runs/cli", "--raw", "ROMEO:", "--max-new-tokens", "5", "--seed", "1")
    assert gen.returncode == 0, gen.stderr
    exported = llmp(workspace, "export", "runs/cli", "--format", "hf", "--out", str(tmp_path / "hf"))
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "hf" / "model.safetensors").is_file() and (tmp_path / "hf" / "tokenizer.json").is_file()
    assert "tokenizer.json: AutoTokenizer gives our SentencePiece ids on all" in exported.stderr, exported.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--set", "foo=1"], "foo: unknown setting"),
    (["train", "--preset", "huge"], "unknown preset 'huge'"),
    (["train", "--set", "n_layer=two"], "n_layer: Input should be a valid integer"),
    (["train", "--set", "block_size=1000000", "--out", "runs/big"], "larger than the train data"),
    (["train", "--resume", "--out", "runs/none"], "is not a run"),
    (["eval", "perplexity", "--model", "runs/none", "--text", "hi"], "unknown model"),
    (["eval", "perplexity", "--model", "runs/none"], "exactly one of --text or --file"),
    (["export", "runs/none", "--out", "x"], "is not a run"),
])
def test_bad_input_is_one_line(workspace, args, message):
    run = llmp(workspace, *args)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith("error:")


def test_missing_stage_names_the_command(tmp_path):
    run = subprocess.run([sys.executable, "-m", "llm_playground.cli.main", "train"], capture_output=True, text=True,
                         env={**os.environ, "LLMP_HOME": str(tmp_path)}, timeout=120)
    assert run.returncode == 2 and "stage: collect" in run.stderr and "llmp data collect" in run.stderr


def _default_sigint() -> None:
    # A test run started in the background of a shell inherits SIGINT ignored, and Python then never turns
    # Ctrl-C into KeyboardInterrupt: the child gets the default disposition, as in a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_saves_before_exiting(workspace):
    process = subprocess.Popen([sys.executable, "-m", "llm_playground.cli.main", "train", *TINY, "--set",
                                "max_iters=100000", "--set", "eval_interval=100000", "--out", "runs/sigint"],
                               env=_env(workspace), cwd=workspace.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=_default_sigint)
    metrics = workspace.run_dir("sigint") / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and sum(1 for _ in read_metrics(metrics)) < 5:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted at step" in stderr and "llmp train --resume" in stderr
    assert (workspace.run_dir("sigint") / "checkpoints" / "last" / "trainer.pt").is_file()


def test_ddp_two_processes_on_gloo(workspace):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
               "llm_playground.cli.main", "train", *TINY, "--set", "max_iters=4", "--set", "eval_interval=2",
               "--out", "runs/ddp"]
    run = subprocess.run(command, capture_output=True, text=True, env=_env(workspace), cwd=workspace.root, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("sample at step 4") == 1  # rank 0 alone reports
    folder = workspace.run_dir("ddp")
    records = read_metrics(folder / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2, 3, 4]  # one writer: no step twice
    for record in train:
        first, second = record["rank_losses"]
        assert first != second  # the ranks saw different batches
        assert 5 < record["loss"] < 7  # ~ln(400) at the start: sane
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoints", "loss.png", "metrics.jsonl",
                                                        "tokenizer.model", "train_config.yaml"]
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["best", "last"]


def test_pipeline_from_an_empty_folder(tmp_path):
    pytest.importorskip("llm_playground.data.corpus", reason="the data stages (llmp data …) are not in this build")
    env = {**os.environ, "LLMP_THREADS": "1", "LLMP_HOME": str(tmp_path), "COLUMNS": "200"}
    args = [sys.executable, "-m", "llm_playground.cli.main", "pipeline", *TINY, "--set", "max_iters=6",
            "--set", "eval_interval=3"]
    run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    for stage in ("collect", "tokenizer", "prepare", "train"):
        assert f"{stage}: " in run.stderr or f"{stage}\n" in run.stderr or stage in run.stderr
    assert (tmp_path / "runs" / "tiny" / "checkpoints" / "best" / "model.safetensors").is_file()
    again = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0 and "is complete" in again.stderr, again.stderr[-3000:]
    longer = subprocess.run([*args, "--set", "max_iters=8"], capture_output=True, text=True, env=env, timeout=600)
    assert longer.returncode == 0 and "resuming" in longer.stderr, longer.stderr[-3000:]
    steps = [r["step"] for r in read_metrics(tmp_path / "runs" / "tiny" / "metrics.jsonl") if r["kind"] == "train"]
    assert steps[-1] == 8


def test_eval_perplexity_of_a_pretrained_model(workspace, smollm2_dir):
    text = "The sun rose slowly over the quiet village, and the baker opened his shop. " * 3
    run = llmp(workspace, "eval", "perplexity", "--model", "smollm2", "--text", text, "--window", "32", "--json")
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["model"] == "smollm2" and figures["windows"] > 1 and 1 < figures["perplexity"] < 100
