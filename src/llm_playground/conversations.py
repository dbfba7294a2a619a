"""Chat history in SQLite: conversations as trees of messages, kept across page reloads and restarts.

Each message points at the one it answers (`parent_id`); a conversation shows one path through its tree,
from the root to its current leaf (`leaf_id`). Regenerating an answer or editing a question adds a sibling
instead of overwriting, so every alternative stays and one can move between them.

One connection per operation: the web app calls this from many threads (one per browser session), and
sqlite3 connections must not be shared between threads. WAL mode lets readers and a writer overlap.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_playground.errors import InputError
from llm_playground.migrations import Migration, migrate

TITLE_LENGTH = 60
ROLES = ("system", "user", "assistant")
_LEAF = object()  # `add`'s default parent: the conversation's current leaf
# Named here: inside ConversationStore, `list` is its method.
Messages = list["Message"]
Ids = list[int]


def _v1_lists(db: sqlite3.Connection) -> None:
    """The first schema: a conversation is a list of messages in id order."""
    db.execute("""CREATE TABLE IF NOT EXISTS conversations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        title TEXT NOT NULL,
        model TEXT,
        system TEXT,
        created REAL NOT NULL,
        updated REAL NOT NULL)""")
    db.execute("""CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL)""")
    db.execute("CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id)")


def _v2_tree(db: sqlite3.Connection) -> None:
    """Messages become a tree (each one's parent is the message before it in its list), and a conversation
    remembers its current leaf and the settings it was written with."""
    db.execute("ALTER TABLE messages ADD COLUMN parent_id INTEGER REFERENCES messages(id) ON DELETE CASCADE")
    db.execute("ALTER TABLE conversations ADD COLUMN leaf_id INTEGER")
    db.execute("ALTER TABLE conversations ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'")
    db.execute("UPDATE messages SET parent_id = (SELECT MAX(p.id) FROM messages p "
               "WHERE p.conversation_id = messages.conversation_id AND p.id < messages.id)")
    db.execute("UPDATE conversations SET leaf_id = (SELECT MAX(m.id) FROM messages m "
               "WHERE m.conversation_id = conversations.id)")
    db.execute("CREATE INDEX messages_by_parent ON messages(parent_id)")


MIGRATIONS: list[Migration] = [_v1_lists, _v2_tree]


@dataclass(frozen=True)
class Message:
    id: int
    role: str
    content: str
    meta: dict[str, Any] = field(default_factory=dict)
    parent_id: int | None = None
    created: float = 0.0

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
    leaf_id: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"


def _conversation(row: sqlite3.Row) -> Conversation:
    values = dict(row)
    values["settings"] = json.loads(values.get("settings") or "{}")
    return Conversation(**values)


def _message(row: sqlite3.Row) -> Message:
    return Message(row["id"], row["role"], row["content"], json.loads(row["meta"]), row["parent_id"], row["created"])


class ConversationStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)  # autocommit: migrate owns BEGIN
        try:
            db.execute("PRAGMA journal_mode=WAL")
            migrate(db, MIGRATIONS, label=str(self.path))
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path} is not a conversations file ({exc})",
                             "move it away (a new one is made), or use another workspace") from None
        finally:
            db.close()

    @contextlib.contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        try:
            if write:  # read the leaf and write its child in one transaction, even with other writers
                db.execute("BEGIN IMMEDIATE")
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        finally:
            db.close()

    def create(self, title: str, model: str | None = None, system: str | None = None,
               settings: dict[str, Any] | None = None) -> int:
        now = time.time()
        with self._connect() as db:
            cursor = db.execute("INSERT INTO conversations (title, model, system, created, updated, settings) "
                                "VALUES (?, ?, ?, ?, ?, ?)",
                                (title_from(title) or "New chat", model, system, now, now,
                                 json.dumps(settings or {})))
            return int(cursor.lastrowid or 0)

    def list(self, search: str = "") -> list[Conversation]:
        """Most recently updated first; `search` keeps those whose title or any message contains it."""
        query = "SELECT * FROM conversations"
        args: tuple[str, ...] = ()
        if search.strip():
            pattern = "%" + search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query += (" WHERE title LIKE ? ESCAPE '\\' OR id IN (SELECT conversation_id FROM messages "
                      "WHERE content LIKE ? ESCAPE '\\')")
            args = (pattern, pattern)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY updated DESC, id DESC", args).fetchall()
        return [_conversation(row) for row in rows]

    def get(self, conversation_id: int) -> Conversation:
        with self._connect() as db:
            row = db.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise InputError(f"conversation {conversation_id} does not exist", "pick one from the list")
        return _conversation(row)

    def messages(self, conversation_id: int) -> Messages:
        """The current path: from the first message to the conversation's current leaf."""
        with self._connect() as db:
            return self._path(db, conversation_id)

    def _path(self, db: sqlite3.Connection, conversation_id: int) -> Messages:
        leaf = self._leaf(db, conversation_id)
        if leaf is None:
            return []
        rows = db.execute("""WITH RECURSIVE path(id, depth) AS (
                                 SELECT ?, 0
                                 UNION ALL SELECT m.parent_id, path.depth + 1 FROM messages m
                                 JOIN path ON m.id = path.id WHERE m.parent_id IS NOT NULL)
                             SELECT m.* FROM path JOIN messages m ON m.id = path.id ORDER BY path.depth DESC""",
                          (leaf,)).fetchall()
        return [_message(row) for row in rows]

    def _leaf(self, db: sqlite3.Connection, conversation_id: int) -> int | None:
        row = db.execute("SELECT leaf_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            return None
        leaf = row["leaf_id"]
        if leaf is not None and db.execute("SELECT 1 FROM messages WHERE id = ? AND conversation_id = ?",
                                           (leaf, conversation_id)).fetchone():
            return int(leaf)
        # No leaf recorded (or it was deleted): the newest message still there.
        row = db.execute("SELECT MAX(id) AS id FROM messages WHERE conversation_id = ?", (conversation_id,)).fetchone()
        return None if row["id"] is None else int(row["id"])

    def add(self, conversation_id: int, role: str, content: str, meta: dict[str, Any] | None = None,
            model: str | None = None, system: str | None = None, parent: Any = _LEAF,
            settings: dict[str, Any] | None = None) -> int:
        """Append a message under the current leaf (or under `parent`: a new branch); it becomes the leaf."""
        now = time.time()
        with self._connect(write=True) as db:
            parent_id = self._leaf(db, conversation_id) if parent is _LEAF else parent
            cursor = db.execute("INSERT INTO messages (conversation_id, role, content, meta, created, parent_id) "
                                "VALUES (?, ?, ?, ?, ?, ?)",
                                (conversation_id, role, content, json.dumps(meta or {}), now, parent_id))
            message_id = int(cursor.lastrowid or 0)
            db.execute("UPDATE conversations SET updated = ?, leaf_id = ?, model = COALESCE(?, model), "
                       "system = COALESCE(?, system), settings = COALESCE(?, settings) WHERE id = ?",
                       (now, message_id, model, system, json.dumps(settings) if settings is not None else None,
                        conversation_id))
            return message_id

    def siblings(self, message_id: int) -> Ids:
        """The ids of the alternatives at this message's place in the tree (itself included), oldest first."""
        with self._connect() as db:
            row = db.execute("SELECT conversation_id, parent_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                return []
            rows = db.execute("SELECT id FROM messages WHERE conversation_id = ? AND parent_id IS ? ORDER BY id",
                              (row["conversation_id"], row["parent_id"])).fetchall()
        return [int(r["id"]) for r in rows]

    def select(self, conversation_id: int, message_id: int) -> None:
        """Show the path through `message_id`: down to its newest descendant along the newest children."""
        with self._connect(write=True) as db:
            leaf = message_id
            while (child := db.execute("SELECT MAX(id) AS id FROM messages WHERE parent_id = ?",
                                       (leaf,)).fetchone()["id"]) is not None:
                leaf = int(child)
            db.execute("UPDATE conversations SET leaf_id = ? WHERE id = ?", (leaf, conversation_id))

    def delete_message(self, message_id: int) -> None:
        """Remove a message and every answer below it; the conversation then shows its parent's path."""
        with self._connect(write=True) as db:
            row = db.execute("SELECT conversation_id, parent_id FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
            db.execute("UPDATE conversations SET leaf_id = ? WHERE id = ? AND leaf_id IS NOT NULL AND leaf_id NOT IN "
                       "(SELECT id FROM messages)", (row["parent_id"], row["conversation_id"]))

    def clear(self, conversation_id: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            db.execute("UPDATE conversations SET leaf_id = NULL WHERE id = ?", (conversation_id,))

    def rename(self, conversation_id: int, title: str) -> None:
        if not title.strip():
            raise InputError("the title is empty", "type a name for the conversation")
        with self._connect() as db:
            db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title_from(title), conversation_id))

    def set_settings(self, conversation_id: int, settings: dict[str, Any], system: str | None = None) -> None:
        with self._connect() as db:
            db.execute("UPDATE conversations SET settings = ?, system = COALESCE(?, system) WHERE id = ?",
                       (json.dumps(settings), system, conversation_id))

    def delete(self, conversation_id: int) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def export(self, conversation_id: int) -> dict[str, Any]:
        """The conversation as JSON-ready data (what the web app's Export button downloads): `messages` is
        the path shown, `tree` every message with its parent (ids local to this file)."""
        conversation = self.get(conversation_id)
        with self._connect() as db:
            rows = db.execute("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id",
                              (conversation_id,)).fetchall()
            path = self._path(db, conversation_id)
        return {"id": conversation.id, "title": conversation.title, "model": conversation.model,
                "system": conversation.system, "created": conversation.created, "updated": conversation.updated,
                "settings": conversation.settings, "leaf_id": path[-1].id if path else None,
                "messages": [{"role": m.role, "content": m.content, "meta": m.meta, "created": m.created}
                             for m in path],
                "tree": [{"id": m.id, "parent_id": m.parent_id, "role": m.role, "content": m.content,
                          "meta": m.meta, "created": m.created} for m in map(_message, rows)]}

    def import_(self, data: Any) -> int:
        """A conversation from `export`'s JSON (its tree if it has one, else its list of messages); a new id."""
        if not isinstance(data, dict) or not isinstance(data.get("tree", data.get("messages")), list):
            raise InputError("this is not an exported conversation",
                             'give a JSON file from "Export as JSON" (an object with "messages")')
        tree = data.get("tree")
        if not isinstance(tree, list):
            items = data["messages"]
            tree = [{**m, "id": i, "parent_id": i - 1 if i else None} for i, m in enumerate(items)
                    if isinstance(m, dict)]
        for item in tree:
            if not isinstance(item, dict) or item.get("role") not in ROLES or not isinstance(item.get("content"), str):
                raise InputError("a message of the file has no valid role and content",
                                 f"each message needs a role ({', '.join(ROLES)}) and a text content")
        _check_import_fields(data, tree)
        now = time.time()
        with self._connect(write=True) as db:
            cursor = db.execute(
                "INSERT INTO conversations (title, model, system, created, updated, settings) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (title_from(str(data.get("title") or "Imported chat")) or "Imported chat", data.get("model"),
                 data.get("system"), float(data.get("created") or now), now, json.dumps(data.get("settings") or {})))
            conversation_id = int(cursor.lastrowid or 0)
            ids: dict[Any, int] = {}
            for item in tree:  # parents come before their children in an export (id order)
                parent = ids.get(item.get("parent_id")) if item.get("parent_id") is not None else None
                cursor = db.execute("INSERT INTO messages (conversation_id, role, content, meta, created, parent_id) "
                                    "VALUES (?, ?, ?, ?, ?, ?)",
                                    (conversation_id, item["role"], item["content"], json.dumps(item.get("meta") or {}),
                                     float(item.get("created") or now), parent))
                ids[item.get("id")] = int(cursor.lastrowid or 0)
            leaf = ids.get(data.get("leaf_id")) if data.get("leaf_id") is not None else None
            if leaf is None and ids:
                leaf = list(ids.values())[-1]
            db.execute("UPDATE conversations SET leaf_id = ? WHERE id = ?", (leaf, conversation_id))
        return conversation_id


def _check_import_fields(data: dict[str, Any], tree: list[dict[str, Any]]) -> None:
    """The fields `import_` stores as they are: text, numbers and ids of the types SQLite and a dict take."""
    def fits(value: Any, *types: type) -> bool:
        return value is None or (isinstance(value, types) and not isinstance(value, bool))

    problems = [name for name in ("model", "system") if not fits(data.get(name), str)]
    problems += [name for name in ("created",) if not fits(data.get(name), int, float)]
    problems += [name for name in ("settings",) if not fits(data.get(name), dict)]
    problems += [name for name in ("leaf_id",) if not fits(data.get(name), int, str)]
    for item in tree:
        problems += [f"a message's {name}" for name in ("id", "parent_id") if not fits(item.get(name), int, str)]
        problems += [f"a message's {name}" for name in ("created",) if not fits(item.get(name), int, float)]
        problems += [f"a message's {name}" for name in ("meta",) if not fits(item.get(name), dict)]
    if problems:
        wrong = ", ".join(dict.fromkeys(problems))
        raise InputError(f"this exported conversation has fields of the wrong type: {wrong}",
                         'give a JSON file from "Export as JSON"')
