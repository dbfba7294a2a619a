"""The Train page: pipeline status, a real `llmp pipeline` in the background, its loss curve, Stop, the new model."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from gpt_helpers import make_workspace
from streamlit.testing.v1 import AppTest

import llm_playground.ui
from llm_playground.errors import InputError
from llm_playground.train.metrics import read_metrics
from llm_playground.ui import jobs

pytestmark = pytest.mark.slow
APP = str(Path(llm_playground.ui.__file__).parent / "app.py")
SMALL = "\n".join(["n_layer=2", "n_head=2", "n_embd=32", "block_size=32", "batch_size=4", "eval_iters=2",
                   "sample_tokens=8", "log_interval=1", "eval_interval=10"])


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A workspace whose corpus, tokenizer and prepared data exist (the data stages' outputs)."""
    return make_workspace(tmp_path_factory.mktemp("ui-train"), chars=120_000, vocab_size=400)


@pytest.fixture
def workspace(built, monkeypatch):
    monkeypatch.setenv("LLMP_HOME", str(built.root))
    monkeypatch.setenv("LLMP_THREADS", "1")
    yield built
    for run in built.runs_dir.glob("*"):  # never leave a training behind
        current = jobs.job(run)
        if current is not None and current.running:
            os.killpg(current.pid, signal.SIGKILL)
    # Each test starts with no run (the status table's "checkpoint" row depends on it), in any order.
    shutil.rmtree(built.runs_dir, ignore_errors=True)


def train_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("views/train.py").run()
    assert not at.exception
    return at


def start(at: AppTest, name: str, iterations: int) -> AppTest:
    at.text_input(key="train_name").set_value(name)
    at.text_area(key="train_settings").set_value(SMALL)
    at.number_input(key="train_max_iters").set_value(iterations)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at


def wait(predicate, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_train_in_the_background_then_use_the_model(workspace):
    at = train_page()
    assert at.title[0].value == "Train"
    status = at.dataframe[0].value
    assert status["stage"].tolist() == ["raw data", "tokenizer", "processed data", "checkpoint", "app ready"]
    assert status["state"].tolist() == ["ready", "ready", "ready", "missing", "missing"]

    start(at, "ui", 30)
    assert "Training in the background" in at.info[0].value
    run = workspace.run_dir("ui")
    assert (run / jobs.PID_FILE).is_file() and (run / jobs.LOG_FILE).is_file()
    wait(lambda: not jobs.job(run).running)
    assert jobs.job(run).returncode == 0, jobs.log_tail(jobs.job(run))

    reloaded = train_page()  # a new session finds the run from its files
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "eval"] == [0, 10, 20, 30]
    assert len(reloaded.get("plotly_chart")) == 1  # the loss curve
    assert "has a checkpoint" in reloaded.success[0].value
    assert any(c.value == "step 30" for c in reloaded.caption)  # the latest sample's caption
    assert reloaded.dataframe[0].value["state"].tolist()[-2:] == ["ready", "ready"]

    # The finished model is in the picker, and the chat runs it.
    picker = reloaded.selectbox(key="model_name")
    assert str(run) in picker.options or "ui (trained run)" in picker.options
    picker.set_value(str(run)).run()
    reloaded.switch_page("views/chat.py").run()
    reloaded.slider(key="max_new_tokens").set_value(6)
    reloaded.chat_input[0].set_value("ROMEO:").run()
    assert not reloaded.exception and not reloaded.error, [e.value for e in reloaded.error]
    assert reloaded.chat_message[1].name == "assistant"
    assert "ui" in reloaded.chat_message[1].caption[0].value  # answered by the trained run


def test_stop_saves_a_checkpoint(workspace):
    at = start(train_page(), "long", 100_000)
    run = workspace.run_dir("long")
    wait(lambda: any(r["kind"] == "train" for r in read_metrics(run / "metrics.jsonl")))
    at.run()
    next(b for b in at.button if b.label == "Stop").click().run()
    wait(lambda: not jobs.job(run).running, timeout=60)
    assert jobs.job(run).returncode == 130
    assert (run / "checkpoints" / "last").is_dir()
    at.run()
    assert any("stopped (checkpoint saved)" in c.value for c in at.caption)


def test_train_bad_input_shows_the_error_and_its_fix(workspace):
    at = train_page()
    at.text_input(key="train_name").set_value("bad name!")
    next(b for b in at.button if b.label == "Start training").click().run()
    assert "not a usable run name" in at.error[0].value
    at.text_input(key="train_name").set_value("fine")
    at.radio(key="train_source").set_value("an uploaded text file")
    next(b for b in at.button if b.label == "Start training").click().run()
    assert "no file uploaded" in at.error[0].value
    at.radio(key="train_source").set_value("the bundled corpus (Shakespeare's plays)")
    at.text_area(key="train_settings").set_value("max_iters")
    next(b for b in at.button if b.label == "Start training").click().run()
    assert "cannot read the setting" in at.error[0].value
    assert not at.exception
    assert not workspace.run_dir("fine").exists()


def test_train_on_an_uploaded_file(tmp_path, monkeypatch):
    """An empty workspace: the upload becomes the corpus, and `llmp pipeline` builds the tokenizer and data first."""
    from gpt_helpers import shakespeare_text

    monkeypatch.setenv("LLMP_HOME", str(tmp_path))
    monkeypatch.setenv("LLMP_THREADS", "1")
    at = train_page()
    assert at.dataframe[0].value["state"].tolist()[:3] == ["missing", "missing", "missing"]
    at.radio(key="train_source").set_value("an uploaded text file")
    at.get("file_uploader")[0].set_value(("plays.txt", shakespeare_text(150_000).encode(), "text/plain"))
    start(at, "mine", 10)
    run = tmp_path / "runs" / "mine"
    try:
        wait(lambda: not jobs.job(run).running)
    finally:
        current = jobs.job(run)
        if current.running:
            os.killpg(current.pid, signal.SIGKILL)
    assert jobs.job(run).returncode == 0, jobs.log_tail(jobs.job(run))
    log = jobs.log_tail(jobs.job(run), lines=200)
    assert "tokenizer: running" in log and "prepare: running" in log and "collect" not in log
    at.run()
    assert at.dataframe[0].value["state"].tolist() == ["ready"] * 5


def test_the_chosen_corpus_is_the_one_trained_on(tmp_path):
    """After an upload, "the bundled corpus" used to leave the upload in place (only missing stages ran)."""
    from gpt_helpers import shakespeare_text

    from llm_playground.data.prepared import read_json_object
    from llm_playground.train.pipeline import missing_data_stages, run_data_stage
    from llm_playground.workspace import Workspace

    workspace = Workspace(tmp_path)
    jobs.use_corpus(workspace, shakespeare_text(30_000))
    assert read_json_object(workspace.manifest_path)["sources"][0]["source"] == "files"
    assert missing_data_stages(workspace) == ["tokenizer", "prepare"]
    for stage in ("tokenizer", "prepare"):
        run_data_stage(workspace, stage)
    assert missing_data_stages(workspace) == []
    jobs.use_corpus(workspace, None)
    assert [s["source"] for s in read_json_object(workspace.manifest_path)["sources"]] == ["shakespeare"]
    assert missing_data_stages(workspace) == ["tokenizer", "prepare"]  # built from the upload: stale now
    with pytest.raises(InputError, match="no text"):
        jobs.use_corpus(workspace, "  \n")
