"""SQLite schema versions: each database file records how many migrations it has had.

The version is SQLite's own `PRAGMA user_version`. A store lists its migrations in order, oldest first;
`migrate` applies those the file has not had yet, each in its own transaction, so a file made by any
earlier version of the project opens with the current schema and keeps its rows. A file from a newer
version than this code is refused instead of being written with the wrong schema. (simonw/llm's
`migrations.py` is the model.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from llm_playground.errors import InputError

Migration = Callable[[sqlite3.Connection], None]


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, migrations: Sequence[Migration], *, label: str) -> int:
    """Bring `db` to `len(migrations)`; returns the version it had before. `label` names the file in errors."""
    before = schema_version(db)
    if before > len(migrations):
        raise InputError(
            f"{label} has schema version {before}, newer than this version of llm-playground knows "
            f"({len(migrations)})",
            fix="upgrade llm-playground, or point it at another file",
        )
    for version in range(before, len(migrations)):
        # One transaction per step (DDL included), so a crash leaves the file at the last complete
        # version. Steps use `db.execute`, never `executescript`, which would commit half-way.
        db.execute("BEGIN")
        try:
            migrations[version](db)
            db.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return before
