"""workspace.RunDir: every file of a training run named in one place, and Workspace.runs(), the one listing."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from safetensors.numpy import save_file

from llm_playground.data.status import run_statuses
from llm_playground.errors import ModelNotFound
from llm_playground.model.gpt_model import checkpoint_for, is_run_directory, weights_complete
from llm_playground.workspace import RunDir, Workspace


def _checkpoint(run: RunDir, kind: str, complete: bool = True, mtime: float | None = None) -> None:
    folder = run.checkpoint(kind)  # type: ignore[arg-type]
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    if complete:
        save_file({"w": np.zeros(2, dtype=np.float32)}, str(folder / "model.safetensors"))
        if mtime is not None:
            os.utime(folder / "model.safetensors", (mtime, mtime))


def test_a_run_names_every_file(tmp_path):
    run = Workspace(tmp_path).run("tiny")
    assert run.path == tmp_path / "runs" / "tiny" and run.name == "tiny"
    assert run.last == run.path / "checkpoints" / "last" and run.best == run.path / "checkpoints" / "best"
    assert run.metrics.name == "metrics.jsonl" and run.config.name == "train_config.yaml"
    assert run.loss_chart.name == "loss.png" and run.tokenizer.name == "tokenizer.model"
    assert run.log.name == "train.log" and run.pid_file.name == "train.pid"
    assert {p.parent for p in (run.metrics, run.config, run.loss_chart, run.tokenizer, run.log)} == {run.path}
    assert Workspace(tmp_path).run_dir("tiny") == run.path


def test_the_checkpoint_in_use_is_best_else_last_and_only_complete_ones_count(tmp_path):
    run = Workspace(tmp_path).run("r")
    assert not run.is_run() and run.usable_checkpoint() is None
    _checkpoint(run, "best", complete=False)  # being written: config.json without weights
    assert run.is_run() and is_run_directory(run.path) and run.usable_checkpoint() is None
    with pytest.raises(ModelNotFound) as caught:
        checkpoint_for(run.path)
    assert "llmp train --out" in caught.value.fix
    _checkpoint(run, "last")
    assert run.usable_checkpoint() == run.last and checkpoint_for(run.path) == run.last
    save_file({"w": np.zeros(2, dtype=np.float32)}, str(run.best / "model.safetensors"))
    assert run.complete_checkpoints() == [("best", run.best), ("last", run.last)]
    assert checkpoint_for(run.path) == run.best


def test_runs_lists_run_folders_by_name(tmp_path):
    workspace = Workspace(tmp_path)
    assert workspace.runs() == []
    for name in ("b", "a", ".a.tmp123"):
        (workspace.runs_dir / name).mkdir(parents=True)
    (workspace.runs_dir / "notes.txt").write_text("not a run")
    assert [run.name for run in workspace.runs()] == ["a", "b"]


def test_statuses_and_the_web_apps_list_come_from_the_one_listing(tmp_path, monkeypatch):
    workspace = Workspace(tmp_path)
    old, new, empty = workspace.run("old"), workspace.run("new"), workspace.run("empty")
    _checkpoint(old, "last", mtime=1_000_000)
    _checkpoint(new, "best", mtime=2_000_000)
    _checkpoint(new, "last", mtime=2_000_100)
    empty.path.mkdir(parents=True)
    new.metrics.write_text(json.dumps({"kind": "eval", "step": 5, "val_loss": 2.5}) + "\n{half a line")
    statuses = run_statuses(workspace)
    assert [(s.name, s.checkpoint) for s in statuses if s.ready] == [("new", "best"), ("old", "last")]
    assert {s.name for s in statuses} == {"old", "new", "empty"}
    assert next(s for s in statuses if s.name == "new").last_metrics["step"] == 5

    from llm_playground.ui.common import trained_runs

    monkeypatch.setenv("LLMP_HOME", str(tmp_path))
    assert trained_runs() == [new.path, old.path]


@pytest.mark.parametrize("header", [b"[1, 2]", b'"text"', b"{not json", b'{"w": {"data_offsets": 3}}'])
def test_a_damaged_safetensors_header_is_incomplete_not_an_error(tmp_path, header):
    path = tmp_path / "model.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    assert weights_complete(path) is False
