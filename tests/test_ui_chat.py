"""The chat page's state through AppTest: the regressions of issue 17 and the conversation features, on the real
bundled model, a real tiny trained run (64-token context) and a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_ui_app import bubbles, chat, errors, start

from llm_playground.conversations import ConversationStore

pytestmark = pytest.mark.slow


def send(at: AppTest, text: str, max_new_tokens: int = 8) -> AppTest:
    """The web app test's `chat`, with the shorter answers these tests need."""
    return chat(at, text, max_new_tokens)


def captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def store(home: Path) -> ConversationStore:
    return ConversationStore(home / "conversations.sqlite3")


def test_new_chat_sends_into_a_new_conversation(home):
    """Bug 1 (the browser test checks it where the browser keeps the old tick): after New chat, a setting
    change must not reopen the old conversation, and the next message starts a new one."""
    at = send(start(), "What is the capital of France?")
    first = store(home).list()[0].id
    button(at, "New chat").click().run()
    assert at.radio(key="conversation_radio").value is None and bubbles(at) == []
    at.slider(key="temperature").set_value(0.3).run()  # any setting
    assert bubbles(at) == []
    at.chat_input[0].set_value("What is the capital of Italy?").run()
    conversations = store(home).list()
    assert len(conversations) == 2
    assert [m.content for m in store(home).messages(first)][:1] == ["What is the capital of France?"]
    assert len(store(home).messages(first)) == 2
    assert store(home).messages(conversations[0].id)[0].content == "What is the capital of Italy?"


def test_reopening_restores_the_system_prompt_and_sampling(home):
    """Bug 2: the conversation's system prompt and settings come back with it, and the prompt is shown."""
    at = start()
    at.text_area(key="system_prompt").set_value("Answer in one word.")
    at.radio(key="preset").set_value("precise").run()
    at.slider(key="frequency_penalty").set_value(0.5)  # bug 6: the penalties have sliders
    at.slider(key="presence_penalty").set_value(0.3).run()
    assert at.radio(key="preset").value == "custom"
    at.slider(key="max_new_tokens").set_value(6)
    at.chat_input[0].set_value("What is the capital of France?").run()
    assert not at.exception and len(bubbles(at)) == 2
    saved = store(home).list()[0]
    assert saved.system == "Answer in one word."
    assert saved.settings["frequency_penalty"] == 0.5 and saved.settings["presence_penalty"] == 0.3

    fresh = start()  # another session, with the default settings
    assert fresh.text_area(key="system_prompt").value == "" and fresh.slider(key="temperature").value == 0.7
    fresh.radio(key="conversation_radio").set_value(saved.id).run()
    assert fresh.text_area(key="system_prompt").value == "Answer in one word."
    assert fresh.slider(key="temperature").value == 0.0 and fresh.slider(key="max_new_tokens").value == 6
    assert fresh.slider(key="frequency_penalty").value == 0.5
    assert "System prompt: Answer in one word." in captions(fresh)


@pytest.fixture
def tiny_run(home):
    """A real trained-run directory with a 64-token context (random weights: its answers are noise)."""
    from gpt_helpers import make_workspace

    from llm_playground.model.gpt import GPT, GPTConfig
    from llm_playground.model.gpt_model import save_gpt

    ws = make_workspace(home, chars=60_000, vocab_size=512)
    run = ws.runs_dir / "tiny"
    net = GPT(GPTConfig(vocab_size=512, block_size=64, n_layer=1, n_head=2, n_embd=16))
    save_gpt(run / "checkpoints" / "best", net, ws.tokenizer_path, extra={"step": 40, "val_loss": 5.0})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"kind": "train", "step": 50, "loss": 5.5}, {"kind": "eval", "step": 40, "train_loss": 5.4, "val_loss": 5.0},
        {"kind": "eval", "step": 60, "train_loss": 5.3, "val_loss": 5.2}]), encoding="utf-8")
    return run


def test_a_small_context_bounds_the_answer_and_refuses_what_does_not_fit(home, tiny_run):
    """Bug 3: a 64-token run: the slider is bounded, messages are answered, an oversized one is not kept,
    and the context gauge tells how full the window is."""
    at = start()
    at.selectbox(key="model_name").set_value(str(tiny_run)).run()
    assert not at.exception
    slider = at.slider(key="max_new_tokens")
    assert slider.max == 32 and slider.value <= 32  # half the context; was 2048 (and 256 by default)
    assert "/ 64" in at.get("progress")[0].proto.text  # the gauge
    at.chat_input[0].set_value("to be or not").run()
    assert not at.exception and not at.error, errors(at)
    assert [role for role, _ in bubbles(at)] == ["user", "assistant"]
    gauge = at.get("progress")[0].proto.text
    assert "prompt tokens" in gauge and "/ 64" in gauge

    at.chat_input[0].set_value("word " * 200).run()
    assert "does not fit" in errors(at) and "Your message was not saved." in captions(at)
    conversation = store(home).list()[0]
    assert [m.role for m in store(home).messages(conversation.id)] == ["user", "assistant"]  # not kept

    models = start("models")  # bug 5: the run's steps and its checkpoint's step, both named
    runs = models.dataframe[1].value
    assert runs["steps trained"].tolist() == [60] and runs["checkpoint's step"].tolist() == [40]


def test_stop_is_only_live_while_generating_and_clear_delete_ask_first(home):
    """Bug 4: Stop is disabled when nothing is written; Clear and Delete ask for a confirmation."""
    at = start()
    assert button(at, "Stop").disabled
    at = send(at, "What is the capital of France?")
    assert button(at, "Stop").disabled  # the answer has ended
    assert not at.info  # no "Stopped." when nothing was stopped
    button(at, "Clear").click().run()
    assert len(bubbles(at)) == 2 and "Remove every message" in at.warning[0].value
    button(at, "Cancel").click().run()
    assert len(bubbles(at)) == 2 and not at.warning
    button(at, "Clear").click().run()
    button(at, "Yes, clear").click().run()
    assert bubbles(at) == []
    button(at, "Delete").click().run()
    assert len(store(home).list()) == 1 and "Delete this conversation" in at.warning[0].value
    button(at, "Yes, delete").click().run()
    assert store(home).list() == []


def test_wordings_of_the_functions_and_tokens_pages(home):
    """Bug 5: no CLI wording in the app, no "unknown model '? at ?'"."""
    from llm_playground.ui.common import PROVIDER

    at = start("functions")
    at.text_area(key="fn_definitions").set_value("")
    button(at, "Call the first request").click().run()
    assert "the function definitions are empty" in errors(at)
    assert "--functions" not in errors(at) and "not found" not in errors(at)

    at = start("explore")
    at.selectbox(key="model_name").set_value(PROVIDER).run()
    button(at, "Tokenize").click().run()
    assert "provider" in errors(at) and "pick a local model" in errors(at) and "? at ?" not in errors(at)


def test_regenerate_keeps_the_old_answer_as_a_sibling(home):
    at = send(start(), "What is the capital of France?")
    first_answer = bubbles(at)[1][1]
    at.radio(key="preset").set_value("creative").run()
    at.number_input(key="seed").set_value(3)
    button(at, "Regenerate").click().run()
    assert not at.exception
    assert [role for role, _ in bubbles(at)] == ["user", "assistant"]
    assert "2 / 2" in captions(at)
    next(b for b in at.button if b.key and b.key.startswith("prev_")).click().run()
    assert "1 / 2" in captions(at) and bubbles(at)[1][1] == first_answer
    conversation = store(home).list()[0]
    assert len(store(home).export(conversation.id)["tree"]) == 3  # the question and both answers


def test_search_timestamps_and_import(home):
    at = send(start(), "What is the capital of France?")
    button(at, "New chat").click().run()
    at = send(at, "Name a colour.")
    assert len(at.radio(key="conversation_radio").options) == 2
    assert all(" · " in option for option in at.radio(key="conversation_radio").options)  # when
    at.text_input(key="chat_search").set_value("paris").run()  # found in an answer, not the title
    assert [o.split(" · ")[0] for o in at.radio(key="conversation_radio").options] == ["What is the capital of France?"]
    at.text_input(key="chat_search").set_value("nothing like this").run()
    assert "Nothing matches" in captions(at)
    at.text_input(key="chat_search").set_value("").run()

    exported = store(home).export(store(home).list()[-1].id)
    upload = json.dumps(exported).encode()
    at.get("file_uploader")[0].set_value(("conversation.json", upload, "application/json")).run()
    assert not at.exception and not at.error, errors(at)
    assert len(store(home).list()) == 3
    assert bubbles(at)[0] == ("user", "What is the capital of France?")  # the import is opened
    at.get("file_uploader")[0].set_value(("bad.json", b'{"title": 3}', "application/json")).run()
    assert "not an exported conversation" in errors(at)


def test_a_provider_by_name_with_tokens_and_cost(home, monkeypatch):
    from test_providers import FakeProvider

    from llm_playground.ui.common import PROVIDER

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeProvider() as fake:
        at = start()
        at.selectbox(key="model_name").set_value(PROVIDER).run()
        at.selectbox(key="provider_preset").set_value("openai").run()
        assert at.text_input(key="provider_url").value == "https://api.openai.com/v1"
        assert at.text_input(key="provider_key_env").value == "OPENAI_API_KEY"
        at.text_input(key="provider_url").set_value(fake.url)  # the fake stands in for OpenAI
        at.text_input(key="provider_model").set_value("gpt-4o-mini").run()
        at.chat_input[0].set_value("What is the capital of France?").run()
        assert not at.exception and not at.error, errors(at)
        assert bubbles(at)[1] == ("assistant", "The capital of France is Paris.")
        caption = at.chat_message[1].caption[0].value
        assert "1000 prompt tokens" in caption and "500 tokens" in caption and "~$0.000450" in caption
        at.chat_input[0].set_value("And of Italy?").run()
        assert "Estimated cost of this conversation: ~$0.000900 (bundled list prices of" in captions(at)


def test_token_view_a_branch_from_a_token_and_an_edited_question(home):
    at = send(start(), "What is the capital of France?", max_new_tokens=8)
    at.toggle(key="token_view").set_value(True).run()
    shown = [m.value for m in at.markdown if "llmp-token" in m.value]
    assert shown and shown[0].count("llmp-token") >= 7 and "title=" in shown[0] and "hsla(" in shown[0]
    conversation = store(home).list()[0].id
    question, answer = store(home).messages(conversation)
    steps = answer.meta["steps"]
    assert all(0 < s["p"] <= 1 and len(s["alt"]) == 5 for s in steps)  # the loop's prob and top alternatives
    assert steps[0]["alt"][0][0] == steps[0]["id"]  # greedy: the chosen token is the most likely

    at.selectbox(key=f"tv_pos_{answer.id}").set_value(2).run()
    other = steps[2]["alt"][1]
    at.radio(key=f"tv_alt_{answer.id}").set_value(other[0])
    button(at, "Continue from here with this token instead").click().run()
    assert not at.exception and not at.error, errors(at)
    branch = store(home).messages(conversation)[1]
    assert branch.id != answer.id and store(home).siblings(branch.id) == [answer.id, branch.id]
    assert [s["id"] for s in branch.meta["steps"][:3]] == [steps[0]["id"], steps[1]["id"], other[0]]
    assert branch.meta["steps"][2]["forced"] and branch.content != answer.content

    at.toggle(key="token_view").set_value(False).run()
    at.text_area(key=f"edit_text_{question.id}").set_value("What is the capital of Italy?")
    button(at, "Send the edited question").click().run()
    assert not at.exception and not at.error, errors(at)
    path = store(home).messages(conversation)
    assert path[0].content == "What is the capital of Italy?" and store(home).siblings(path[0].id)[0] == question.id
    assert path[1].role == "assistant" and path[1].parent_id == path[0].id and "2 / 2" in captions(at)
    assert len(store(home).export(conversation)["tree"]) == 5  # both questions, all three answers


def test_side_by_side_streams_two_settings_and_saves_them_as_a_conversation(home):
    at = start("compare")
    assert at.title[0].value == "Side by side" and not at.warning
    assert at.slider(key="cmp_temperature_a").value == 0.0 and at.slider(key="cmp_temperature_b").value == 1.0
    at.slider(key="max_new_tokens").set_value(8)
    at.number_input(key="seed").set_value(2)
    at.chat_input[0].set_value("What is the capital of France?").run()
    assert not at.exception and not at.error, errors(at)
    texts = [m.value for m in at.markdown]
    assert "**Prompt:** What is the capital of France?" in texts
    assert sum("· temperature 0" in t for t in texts) == 1 and sum("· temperature 1" in t for t in texts) == 1
    stats = [c.value for c in at.caption if "tokens/s" in c.value]
    assert len(stats) == 2 and all("tokens ·" in s for s in stats)
    assert any("Paris" in t for t in texts)  # temperature 0: the greedy answer

    button(at, "Save as a conversation").click().run()
    assert "Saved as conversation" in at.success[0].value
    saved = store(home).list()[0]
    question, answer = store(home).messages(saved.id)
    assert question.content == "What is the capital of France?"
    assert len(store(home).siblings(answer.id)) == 2  # the two answers, alternatives of one question


def test_side_by_side_a_local_model_and_a_provider(home, monkeypatch):
    from test_providers import ANSWER, FakeProvider

    from llm_playground.ui.common import PROVIDER

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with FakeProvider() as fake:
        at = start("compare")
        for key, value in {"provider_url": fake.url, "provider_model": "gpt-4o-mini",
                           "provider_key_env": "OPENAI_API_KEY"}.items():
            at.session_state[key] = value
        at.selectbox(key="cmp_model_b").set_value(PROVIDER).run()
        at.slider(key="max_new_tokens").set_value(8)
        at.chat_input[0].set_value("What is the capital of France?").run()
        assert not at.exception and not at.error, errors(at)
        assert "".join(ANSWER) in [m.value for m in at.markdown]
        assert any("500 tokens" in c.value for c in at.caption)  # the provider's usage
