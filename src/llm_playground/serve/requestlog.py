"""Every API request in SQLite: when, which model, the messages, the parameters, the output, tokens, timings.

One table, JSON in text columns, so `llmp logs` (and any SQLite client) can read it without us.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llm_playground.errors import InputError
from llm_playground.migrations import migrate


# Version 1 is the table as the first release made it (a file from then has user_version 0 and the
# table already: IF NOT EXISTS keeps its rows). Version 2 records why a request was refused.
def _v1_requests(db: sqlite3.Connection) -> None:
    db.execute("""
        CREATE TABLE IF NOT EXISTS requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            model TEXT NOT NULL,
            status INTEGER NOT NULL,
            messages TEXT NOT NULL,
            params TEXT NOT NULL,
            output TEXT NOT NULL,
            finish_reason TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            queue_ms REAL,
            ttft_ms REAL,
            total_ms REAL,
            error TEXT
        )""")
    db.execute("CREATE INDEX IF NOT EXISTS requests_time ON requests(time)")


def _v2_refusals(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE requests ADD COLUMN param TEXT")  # the request field an error names
    db.execute("ALTER TABLE requests ADD COLUMN code TEXT")  # OpenAI's error code, or its type
    db.execute("CREATE INDEX IF NOT EXISTS requests_status ON requests(status)")


MIGRATIONS = [_v1_requests, _v2_refusals]
_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_text(value: Any) -> str:
    """JSON that SQLite can store as UTF-8, losslessly: a lone surrogate (not encodable in UTF-8) is
    written as its JSON escape, which reads back as the same string."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))


def _text(value: str | None) -> str | None:
    return None if value is None else _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def _like(text: str) -> str:
    """`text` as a LIKE pattern that matches it literally (`%` and `_` are wildcards otherwise)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class LogRecord:
    endpoint: str
    model: str
    status: int
    messages: Any  # the chat messages, or the completion prompt
    params: dict[str, Any]
    output: Any  # the choices as sent
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    queue_ms: float | None = None
    ttft_ms: float | None = None
    total_ms: float | None = None
    error: str | None = None
    time: str = ""
    param: str | None = None
    code: str | None = None
    id: int | None = None


_JSON_COLUMNS = ("messages", "params", "output")


class RequestLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                db = sqlite3.connect(self.path, check_same_thread=False, timeout=10)
                db.execute("PRAGMA journal_mode=WAL")
                db.isolation_level = None  # migrate runs its own transactions
                migrate(db, MIGRATIONS, label=f"the request log {self.path}")
                db.isolation_level = "DEFERRED"  # back to implicit transactions
            except sqlite3.DatabaseError as exc:
                raise InputError(f"cannot open the request log {self.path}: {exc}",
                                 "move the file away; a new log is created on the next request") from exc
            db.row_factory = sqlite3.Row
            self._db = db
        return self._db

    def record(self, record: LogRecord) -> int:
        values = asdict(record)
        values.pop("id")
        values["time"] = values["time"] or dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        for column, value in values.items():
            if column in _JSON_COLUMNS:
                values[column] = _json_text(value)
            elif isinstance(value, str):
                values[column] = _text(value)
        columns = ", ".join(values)
        with self._lock:
            db = self._connect()
            cursor = db.execute(f"INSERT INTO requests ({columns}) VALUES ({', '.join('?' * len(values))})",
                                tuple(values.values()))
            db.commit()
            return int(cursor.lastrowid or 0)

    def query(self, search: str | None = None, limit: int | None = 20) -> list[LogRecord]:
        """The newest records first; `search` matches the messages, output, model or parameters."""
        if not self.path.exists():
            return []
        sql, args = "SELECT * FROM requests", list[Any]()
        if search:
            sql += " WHERE " + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in ("messages", "output", "model", "params"))
            args = [_like(search)] * 4
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._connect().execute(sql, args).fetchall()
        records = []
        for row in rows:
            values = dict(row)
            for column in _JSON_COLUMNS:
                values[column] = json.loads(values[column])
            records.append(LogRecord(**values))
        return records

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
