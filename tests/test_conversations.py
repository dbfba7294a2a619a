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
