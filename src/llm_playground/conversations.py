"""Chat history in SQLite: conversations and their messages, kept across page reloads and restarts.

One connection per operation: the web app calls this from many threads (one per browser session), and
sqlite3 connections must not be shared between threads. WAL mode lets readers and a writer overlap.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_playground.errors import InputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    model TEXT,
    system TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
"""
TITLE_LENGTH = 60


@dataclass(frozen=True)
class Message:
    id: int
    role: str
    content: str
    meta: dict[str, Any] = field(default_factory=dict)

    def as_chat(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    model: str | None
    system: str | None
    created: float
    updated: float


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


class ConversationStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        try:
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        finally:
            db.close()

    def create(self, title: str, model: str | None = None, system: str | None = None) -> int:
        now = time.time()
        with self._connect() as db:
            cursor = db.execute("INSERT INTO conversations (title, model, system, created, updated) "
                                "VALUES (?, ?, ?, ?, ?)", (title_from(title) or "New chat", model, system, now, now))
            return int(cursor.lastrowid or 0)

    def list(self) -> list[Conversation]:
        """Most recently updated first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM conversations ORDER BY updated DESC, id DESC").fetchall()
        return [Conversation(**dict(row)) for row in rows]

    def get(self, conversation_id: int) -> Conversation:
        with self._connect() as db:
            row = db.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise InputError(f"conversation {conversation_id} does not exist", "pick one from the list")
        return Conversation(**dict(row))

    def messages(self, conversation_id: int) -> builtins.list[Message]:  # `list` is a method here
        with self._connect() as db:
            rows = db.execute("SELECT id, role, content, meta FROM messages WHERE conversation_id = ? ORDER BY id",
                              (conversation_id,)).fetchall()
        return [Message(row["id"], row["role"], row["content"], json.loads(row["meta"])) for row in rows]

    def add(self, conversation_id: int, role: str, content: str, meta: dict[str, Any] | None = None,
            model: str | None = None, system: str | None = None) -> int:
        now = time.time()
        with self._connect() as db:
            cursor = db.execute("INSERT INTO messages (conversation_id, role, content, meta, created) "
                                "VALUES (?, ?, ?, ?, ?)",
                                (conversation_id, role, content, json.dumps(meta or {}), now))
            db.execute("UPDATE conversations SET updated = ?, model = COALESCE(?, model), system = COALESCE(?, system) "
                       "WHERE id = ?",
                       (now, model, system, conversation_id))
            return int(cursor.lastrowid or 0)

    def delete_message(self, message_id: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def clear(self, conversation_id: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))

    def rename(self, conversation_id: int, title: str) -> None:
        if not title.strip():
            raise InputError("the title is empty", "type a name for the conversation")
        with self._connect() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title_from(title), conversation_id))

    def delete(self, conversation_id: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def export(self, conversation_id: int) -> dict[str, Any]:
        """The conversation as JSON-ready data (what the web app's Export button downloads)."""
        conversation = self.get(conversation_id)
        return {"id": conversation.id, "title": conversation.title, "model": conversation.model,
                "system": conversation.system, "created": conversation.created, "updated": conversation.updated,
                "messages": [{"role": m.role, "content": m.content, "meta": m.meta}
                             for m in self.messages(conversation_id)]}
