"""migrations.migrate: versions recorded in the file, steps applied once each, atomically, in order."""

from __future__ import annotations

import sqlite3

import pytest

from llm_playground.errors import InputError
from llm_playground.migrations import migrate, schema_version


def _create(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")


def _add_column(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE notes ADD COLUMN tag TEXT NOT NULL DEFAULT ''")


def test_a_file_of_an_earlier_version_gets_only_the_missing_steps_and_keeps_its_rows(tmp_path):
    path = tmp_path / "notes.sqlite3"
    with sqlite3.connect(path) as db:
        assert migrate(db, [_create], label="notes") == 0
        db.execute("INSERT INTO notes (text) VALUES ('kept')")
    db = sqlite3.connect(path)
    assert schema_version(db) == 1
    assert migrate(db, [_create, _add_column], label="notes") == 1  # _create is not run again
    assert db.execute("SELECT text, tag FROM notes").fetchall() == [("kept", "")]
    assert migrate(db, [_create, _add_column], label="notes") == 2  # nothing left to do
    assert schema_version(db) == 2


def test_a_failing_step_leaves_the_file_at_the_last_complete_version(tmp_path):
    def half_done(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE extra (x)")
        raise RuntimeError("disk on fire")

    db = sqlite3.connect(tmp_path / "notes.sqlite3")
    with pytest.raises(RuntimeError):
        migrate(db, [_create, half_done], label="notes")
    assert schema_version(db) == 1
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"notes"}  # the DDL of the failed step was rolled back with it


def test_a_file_from_a_newer_version_is_refused_with_the_fix(tmp_path):
    db = sqlite3.connect(tmp_path / "notes.sqlite3")
    migrate(db, [_create, _add_column], label="notes")
    with pytest.raises(InputError) as refused:
        migrate(db, [_create], label="notes.sqlite3")
    assert "notes.sqlite3 has schema version 2" in str(refused.value)
    assert refused.value.fix and "upgrade" in refused.value.fix
