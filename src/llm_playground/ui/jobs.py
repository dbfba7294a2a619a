"""Training as a background process the web app starts, watches and stops: `llmp pipeline` in its own session.

The process outlives the browser page and the Streamlit session (and even the web server): its pid,
command and log live in the run directory (`train.pid`, `train.log`), so any later page finds it again.
Stop sends SIGINT, which the trainer turns into a checkpoint and a clean exit.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_playground.errors import InputError
from llm_playground.workspace import RunDir, Workspace, atomic_write_text

PID_FILE, LOG_FILE = RunDir(Path()).pid_file.name, RunDir(Path()).log.name
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CHILDREN: dict[int, subprocess.Popen] = {}  # ours, so that finished ones are reaped and their status known


@dataclass(frozen=True)
class Job:
    run_dir: Path
    pid: int
    command: list[str]
    started: float
    running: bool
    returncode: int | None

    @property
    def log_path(self) -> Path:
        return RunDir(self.run_dir).log


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(f"{name!r} is not a usable run name", "use letters, digits, '-', '_' or '.', e.g. tiny-1")
    return name


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def job(run_dir: Path) -> Job | None:
    """The last training started in `run_dir` by the web app, running or not."""
    try:
        record: dict[str, Any] = json.loads(RunDir(run_dir).pid_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = int(record["pid"])
    running = _alive(pid)
    child = _CHILDREN.get(pid)
    return Job(run_dir, pid, record["command"], record["started"], running,
               None if running or child is None else child.returncode)


def use_corpus(workspace: Workspace, upload: str | None) -> None:
    """The corpus a run trains on: the uploaded text, or (None) the bundled plays when the workspace holds
    another corpus. Collected as `llmp data collect` does (cleaning, manifest); `llmp pipeline` then rebuilds
    the tokenizer and the prepared data, stale from then on."""
    from llm_playground.data.corpus import CollectRequest, collect
    from llm_playground.data.prepared import read_json_object

    if upload is None:
        manifest = read_json_object(workspace.manifest_path) or {}
        if workspace.corpus_path.is_file() and [s.get("source") for s in manifest.get("sources", [])] == [
                "shakespeare"]:
            return
        collect(workspace, CollectRequest(sources=("shakespeare",)))
        return
    if not upload.strip():
        raise InputError("the uploaded file has no text", "upload a UTF-8 text file")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.txt"
        path.write_text(upload, encoding="utf-8")
        collect(workspace, CollectRequest(sources=("files",), paths=[path]))


def start(workspace: Workspace, name: str, preset: str, settings: list[str]) -> Job:
    """Start `llmp pipeline` (every missing data stage, then training) for runs/NAME in the background."""
    run_dir = workspace.run_dir(check_name(name))
    current = job(run_dir)
    if current is not None and current.running:
        raise InputError(f"runs/{name} is already training (pid {current.pid})", "stop it first, or pick another name")
    for setting in settings:
        if "=" not in setting:
            raise InputError(f"cannot read the setting {setting!r}", "write one key=value a line, e.g. max_iters=500")
    command = [sys.executable, "-m", "llm_playground.cli.main", "pipeline", "--preset", preset, "--out", str(run_dir)]
    for setting in settings:
        command += ["--set", setting]
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LLMP_HOME": str(workspace.root), "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}
    with RunDir(run_dir).log.open("w", encoding="utf-8") as log:
        # A new session: a Ctrl-C in the terminal running `llmp ui` does not reach the training, and
        # Stop can signal the whole process group.
        process = subprocess.Popen(command, cwd=workspace.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    _CHILDREN[process.pid] = process
    started = time.time()
    record = {"pid": process.pid, "command": command, "started": started}
    atomic_write_text(RunDir(run_dir).pid_file, json.dumps(record))
    return Job(run_dir, process.pid, command, started, True, None)


def stop(current: Job) -> None:
    """SIGINT: the trainer saves a checkpoint and exits (status 130)."""
    if not current.running:
        return
    try:
        os.killpg(current.pid, signal.SIGINT)
    except ProcessLookupError:
        pass


def log_tail(current: Job, lines: int = 30) -> str:
    try:
        text = current.log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    # Progress bars redraw with carriage returns: keep what each line finally showed.
    shown = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join(shown[-lines:])
