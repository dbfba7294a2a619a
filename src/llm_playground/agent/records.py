"""Every agent run and each of its steps in the workspace's SQLite file (agent.sqlite3).

A run: the task, model, tools offered, status, final answer, totals. A step: what the model did (a call
or the answer), the tool, its arguments, the result or error, tokens and milliseconds. `llmp runs`, the
web app's Agent page and any SQLite client read the same two tables; the schema has a version
(migrations.py), so files made by earlier versions open with their rows.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_playground.errors import InputError
from llm_playground.migrations import migrate


def _v1(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started TEXT NOT NULL,
        finished TEXT,
        task TEXT NOT NULL,
        model TEXT NOT NULL,
        tools TEXT NOT NULL,
        status TEXT NOT NULL,
        answer TEXT,
        steps INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        ms REAL,
        error TEXT)""")
    db.execute("""CREATE TABLE steps (
        run_id INTEGER NOT NULL REFERENCES runs(id),
        step INTEGER NOT NULL,
        kind TEXT NOT NULL,
        tool TEXT,
        arguments TEXT,
        result TEXT,
        error TEXT,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        ms REAL NOT NULL,
        tool_ms REAL,
        PRIMARY KEY (run_id, step))""")


def _v2(db: sqlite3.Connection) -> None:
    # How the final answer was written: by the model, or from the template (answer.py).
    db.execute("ALTER TABLE runs ADD COLUMN answer_mode TEXT")


MIGRATIONS = [_v1, _v2]


@dataclass
class StepRecord:
    step: int
    kind: str  # "call" | "answer"
    ms: float
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    result: str | None = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tool_ms: float | None = None
    value: Any = field(default=None, repr=False, compare=False)  # the tool's returned value (not stored)


@dataclass
class RunRecord:
    id: int
    started: str
    task: str
    model: str
    tools: list[str]
    status: str
    finished: str | None = None
    answer: str | None = None
    answer_mode: str | None = None
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ms: float | None = None
    error: str | None = None
    timeline: list[StepRecord] = field(default_factory=list)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class RunStore:
    """The agent's SQLite file. One connection, used from any thread under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        try:
            migrate(self._db, MIGRATIONS, label=str(self.path))
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise InputError(f"{self.path} is not an agent runs file ({exc})",
                             "move it away (a new one is made), or use another workspace") from None

    def close(self) -> None:
        self._db.close()

    def start(self, task: str, model: str, tools: list[str]) -> int:
        with self._lock:
            cursor = self._db.execute("INSERT INTO runs (started, task, model, tools, status) VALUES (?, ?, ?, ?, ?)",
                                      (_now(), task, model, json.dumps(tools), "running"))
            return int(cursor.lastrowid or 0)

    def add_step(self, run_id: int, step: StepRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO steps (run_id, step, kind, tool, arguments, result, error, prompt_tokens, "
                "completion_tokens, ms, tool_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, step.step, step.kind, step.tool,
                 None if step.arguments is None else json.dumps(step.arguments, ensure_ascii=False),
                 step.result, step.error, step.prompt_tokens, step.completion_tokens, step.ms, step.tool_ms))

    def finish(self, run_id: int, *, status: str, answer: str | None, answer_mode: str | None, ms: float,
               error: str | None = None) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE runs SET finished = ?, status = ?, answer = ?, answer_mode = ?, ms = ?, error = ?, "
                "steps = (SELECT COUNT(*) FROM steps WHERE run_id = ?), "
                "prompt_tokens = (SELECT COALESCE(SUM(prompt_tokens), 0) FROM steps WHERE run_id = ?), "
                "completion_tokens = (SELECT COALESCE(SUM(completion_tokens), 0) FROM steps WHERE run_id = ?) "
                "WHERE id = ?", (_now(), status, answer, answer_mode, ms, error, run_id, run_id, run_id, run_id))

    def runs(self, limit: int = 20) -> list[RunRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_run(row) for row in rows]

    def get(self, run_id: int) -> RunRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
            steps = self._db.execute(f"SELECT {_STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY step",
                                     (run_id,)).fetchall()
        if row is None:
            return None
        run = _run(row)
        run.timeline = [StepRecord(step=s[0], kind=s[1], tool=s[2],
                                   arguments=None if s[3] is None else json.loads(s[3]), result=s[4], error=s[5],
                                   prompt_tokens=s[6], completion_tokens=s[7], ms=s[8], tool_ms=s[9])
                        for s in steps]
        return run


_RUN_COLUMNS = ("id, started, task, model, tools, status, finished, answer, answer_mode, steps, prompt_tokens, "
                "completion_tokens, ms, error")
_STEP_COLUMNS = "step, kind, tool, arguments, result, error, prompt_tokens, completion_tokens, ms, tool_ms"


def _run(row: tuple) -> RunRecord:
    return RunRecord(id=row[0], started=row[1], task=row[2], model=row[3], tools=json.loads(row[4]), status=row[5],
                     finished=row[6], answer=row[7], answer_mode=row[8], steps=row[9], prompt_tokens=row[10],
                     completion_tokens=row[11], ms=row[12], error=row[13])
