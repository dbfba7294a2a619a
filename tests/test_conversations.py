"""The chat history store: real SQLite files, several connections, as the web app uses it."""

from __future__ import annotations

import json
import threading

import pytest

from llm_playground.conversations import ConversationStore, title_from
from llm_playground.errors import InputError


def test_conversation_lifecycle(tmp_path):
    store = ConversationStore(tmp_path / "chat.sqlite3")
    first = store.create("What is the capital of France?", model="smollm2")
    store.add(first, "user", "What is the capital of France?")
    store.add(first, "assistant", "Paris.", {"tokens": 3, "tokens_per_s": 20.0}, model="smollm2", system="Be brief.")
    second = store.create("Another one")
    store.add(second, "user", "hi")

    # A new store object on the same file (a restart) sees everything, most recently updated first.
    reopened = ConversationStore(tmp_path / "chat.sqlite3")
    assert [c.id for c in reopened.list()] == [second, first]
    messages = reopened.messages(first)
    assert [(m.role, m.content) for m in messages] == [("user", "What is the capital of France?"),
                                                       ("assistant", "Paris.")]
    assert messages[1].meta == {"tokens": 3, "tokens_per_s": 20.0}
    assert reopened.get(first).system == "Be brief."

    reopened.rename(first, "  France  ")
    assert reopened.get(first).title == "France"
    exported = reopened.export(first)
    assert json.loads(json.dumps(exported))["messages"][1]["content"] == "Paris."
    assert exported["title"] == "France" and exported["model"] == "smollm2"

    reopened.delete_message(messages[1].id)
    assert len(reopened.messages(first)) == 1
    reopened.clear(first)
    assert reopened.messages(first) == []
    reopened.delete(second)
    assert [c.id for c in reopened.list()] == [first]
    assert reopened.messages(second) == []  # messages go with their conversation


def test_user_mistakes_are_playground_errors(tmp_path):
    store = ConversationStore(tmp_path / "chat.sqlite3")
    conversation = store.create("x")
    with pytest.raises(InputError, match="title is empty"):
        store.rename(conversation, "   ")
    with pytest.raises(InputError, match="does not exist"):
        store.get(conversation + 1)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 200)
    with pytest.raises(InputError, match="is not a conversations file"):
        ConversationStore(junk)


def test_titles_are_one_short_line():
    assert title_from("a\n b   c") == "a b c"
    long = title_from("word " * 40)
    assert len(long) == 60 and long.endswith("…")


def test_writes_from_many_threads(tmp_path):
    """The web app writes from one thread per browser session."""
    store = ConversationStore(tmp_path / "chat.sqlite3")
    conversation = store.create("busy")

    def write(worker: int) -> None:
        for i in range(20):
            store.add(conversation, "user", f"{worker}-{i}")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.messages(conversation)) == 80


def test_a_question_keeps_the_system_prompt_an_answer_sets_it(tmp_path):
    store = ConversationStore(tmp_path / "chat.sqlite3")
    chat = store.create("Capitals")
    store.add(chat, "assistant", "Paris.", system="Be brief.")
    store.add(chat, "user", "And of Italy?")  # used to set it to NULL until the answer came
    assert store.get(chat).system == "Be brief."
    store.add(chat, "assistant", "Rome.", system="")  # the prompt was cleared
    assert not store.get(chat).system


def _v1_file(path):
    """A chat file exactly as the first schema (lists of messages, no version) wrote it."""
    import sqlite3

    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE conversations (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, model TEXT,
            system TEXT, created REAL NOT NULL, updated REAL NOT NULL);
        CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')), content TEXT NOT NULL,
            meta TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL);
        CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
        INSERT INTO conversations VALUES (1, 'Capitals', 'smollm2', 'Be brief.', 1.0, 2.0);
        INSERT INTO messages VALUES (1, 1, 'user', 'France?', '{}', 1.0);
        INSERT INTO messages VALUES (2, 1, 'assistant', 'Paris.', '{"tokens": 2}', 1.5);
        INSERT INTO messages VALUES (3, 1, 'user', 'Italy?', '{}', 1.6);
        INSERT INTO messages VALUES (4, 1, 'assistant', 'Rome.', '{}', 1.7);
    """)
    db.commit()
    db.close()


def test_a_file_of_the_list_schema_opens_as_a_tree(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    _v1_file(path)
    store = ConversationStore(path)
    assert [(m.role, m.content) for m in store.messages(1)] == [("user", "France?"), ("assistant", "Paris."),
                                                               ("user", "Italy?"), ("assistant", "Rome.")]
    assert [m.parent_id for m in store.messages(1)] == [None, 1, 2, 3]
    assert store.get(1).system == "Be brief." and store.get(1).settings == {}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    ConversationStore(path)  # opening again changes nothing
    assert len(store.messages(1)) == 4


def test_branches_siblings_and_an_export_that_keeps_the_tree(tmp_path):
    store = ConversationStore(tmp_path / "chat.sqlite3")
    chat = store.create("Capitals", settings={"temperature": 0.0})
    question = store.add(chat, "user", "France?")
    first = store.add(chat, "assistant", "Paris.")
    second = store.add(chat, "assistant", "It is Paris.", parent=question)  # a regenerated answer
    assert [m.content for m in store.messages(chat)] == ["France?", "It is Paris."]
    assert store.siblings(first) == store.siblings(second) == [first, second]
    store.add(chat, "user", "And Italy?")
    edited = store.add(chat, "user", "France, please?", parent=None)  # an edited first question
    assert store.siblings(edited) == [question, edited]
    store.select(chat, question)  # back to the first question: down its newest answers
    assert [m.content for m in store.messages(chat)] == ["France?", "It is Paris.", "And Italy?"]

    exported = json.loads(json.dumps(store.export(chat)))
    assert len(exported["tree"]) == 5 and exported["settings"] == {"temperature": 0.0}
    copy = store.import_(exported)
    assert [m.content for m in store.messages(copy)] == ["France?", "It is Paris.", "And Italy?"]
    assert len(store.export(copy)["tree"]) == 5
    store.delete_message(second)  # the answer and what follows it
    assert [m.content for m in store.messages(chat)] == ["France?"]
    with pytest.raises(InputError, match="not an exported conversation"):
        store.import_({"title": "x"})
    list_only = store.import_({"title": "old", "messages": [{"role": "user", "content": "hi"},
                                                            {"role": "assistant", "content": "hello"}]})
    assert [m.parent_id is None for m in store.messages(list_only)] == [True, False]
    before = len(store.list())
    for broken in ({"messages": [], "created": "yesterday"}, {"messages": [], "model": {"name": "x"}},
                   {"tree": [{"id": [1], "role": "user", "content": "hi"}]},
                   {"tree": [{"id": 1, "role": "user", "content": "hi", "created": "noon"}]}):
        with pytest.raises(InputError, match="wrong type"):
            store.import_(broken)
    assert len(store.list()) == before  # nothing half-imported


def test_search_titles_and_messages(tmp_path):
    store = ConversationStore(tmp_path / "chat.sqlite3")
    a = store.create("Capitals")
    store.add(a, "assistant", "Paris is 100% French_ish")
    b = store.create("Colours")
    assert [c.id for c in store.list("paris")] == [a]
    assert [c.id for c in store.list("colo")] == [b]
    assert [c.id for c in store.list("100%")] == [a] and store.list("e_c") == []  # LIKE's wildcards are literal
    assert len(store.list("  ")) == 2
