"""Every page of the web app through Streamlit's AppTest, on the real bundled model and a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import llm_playground.ui
from llm_playground.conversations import ConversationStore

pytestmark = pytest.mark.slow
APP = str(Path(llm_playground.ui.__file__).parent / "app.py")
TIMEOUT = 120


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    if page:
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception
    return at


def chat(at: AppTest, text: str, max_new_tokens: int = 12) -> AppTest:
    at.radio(key="preset").set_value("precise")
    at.run()
    at.slider(key="max_new_tokens").set_value(max_new_tokens)
    at.chat_input[0].set_value(text).run()
    assert not at.exception
    return at


def bubbles(at: AppTest) -> list[tuple[str, str]]:
    return [(m.name, " ".join(md.value for md in m.markdown)) for m in at.chat_message]


def errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_chat_page_has_its_controls(home):
    at = start()
    assert at.title[0].value == "Chat"
    assert {s.label for s in at.slider} == {"Temperature", "Top-k", "Top-p", "Min-p", "Repetition penalty",
                                            "Frequency penalty", "Presence penalty", "Max new tokens"}
    assert at.radio(key="preset").options == ["precise", "balanced", "creative", "custom"]
    assert at.number_input(key="seed").value is None  # random unless given
    assert at.text_area(key="system_prompt").label == "System prompt"
    assert at.selectbox(key="model_name").value == "smollm2"
    assert {"Stop", "Regenerate", "Clear", "New chat"} <= {b.label for b in at.button}
    assert len(at.chat_input) == 1
    # A preset sets the sliders; moving a slider makes the preset "custom".
    at.radio(key="preset").set_value("creative").run()
    assert at.slider(key="temperature").value == 1.1 and at.slider(key="min_p").value == 0.05
    at.slider(key="top_k").set_value(7).run()
    assert at.radio(key="preset").value == "custom"


def test_chat_turn_streams_an_answer_that_survives_reruns_and_reloads(home):
    at = chat(start(), "What is the capital of France?")
    assert bubbles(at)[0] == ("user", "What is the capital of France?")
    role, answer = bubbles(at)[1]
    assert role == "assistant" and "Paris" in answer
    caption = at.chat_message[1].caption[0].value
    assert "tokens/s" in caption and "tokens ·" in caption
    assert (home / "conversations.sqlite3").is_file()

    at.run()  # a rerun draws the conversation from SQLite
    assert bubbles(at)[1] == ("assistant", answer)

    fresh = start()  # a new browser session: the conversation is listed and reopens
    radio = fresh.radio(key="conversation_radio")
    assert radio.options[0].startswith("What is the capital of France? · ") and radio.value is None
    radio.set_value(_store(home).list()[0].id).run()
    assert bubbles(fresh) == [("user", "What is the capital of France?"), ("assistant", answer)]


def test_regenerate_clear_rename_export_delete(home):
    at = chat(start(), "What is the capital of France?")
    at.number_input(key="seed").set_value(4)
    button(at, "Regenerate").click().run()
    assert not at.exception
    assert [role for role, _ in bubbles(at)] == ["user", "assistant"]  # the answer was replaced, not added
    assert "seed 4" in at.chat_message[1].caption[0].value

    at.text_input(key="rename_title").set_value("Geography")
    button(at, "Rename").click().run()
    assert at.radio(key="conversation_radio").options[0].startswith("Geography · ")
    assert [b.label for b in at.get("download_button")] == ["Export as JSON"]
    store = _store(home)
    exported = json.loads(json.dumps(store.export(store.list()[0].id)))  # what the button downloads
    assert exported["title"] == "Geography" and [m["role"] for m in exported["messages"]] == ["user", "assistant"]

    button(at, "Clear").click().run()
    button(at, "Yes, clear").click().run()  # Clear and Delete ask first
    assert bubbles(at) == []
    button(at, "Delete").click().run()
    button(at, "Yes, delete").click().run()
    assert "No conversations yet" in " ".join(c.value for c in at.caption)


def _store(home: Path) -> ConversationStore:
    return ConversationStore(home / "conversations.sqlite3")


def test_bad_input_shows_the_error_and_its_fix(home):
    at = start()
    at.chat_input[0].set_value("   ").run()
    assert "the message is empty" in errors(at) and "type something" in errors(at)
    button(at, "Regenerate").click().run()
    assert "no message to answer again" in errors(at)

    at.selectbox(key="model_name").set_value("other (a path)…").run()
    at.text_input(key="model_path").set_value(str(home / "nope.gguf")).run()
    chat(at, "hello")
    assert "unknown model" in errors(at) and "a .gguf file" in errors(at)
    assert not at.exception  # never a traceback


def test_explore_runs_every_analysis_and_draws_charts(home):
    at = start("explore")
    assert at.title[0].value == "Explore"
    assert [t.label for t in at.tabs] == ["Tokens", "Next token", "Attention", "Embeddings", "Perplexity", "Sweep",
                                          "Walkthrough"]
    for label in ["Tokenize", "Predict", "Compute every layer and head", "Project", "Score", "Run the sweep",
                  "Walk through"]:
        at.number_input(key="sweep_samples").set_value(2)
        at.number_input(key="sweep_tokens").set_value(4)
        at.number_input(key="walk_tokens").set_value(3)
        button(at, label).click().run()
        assert not at.exception, label
        assert not at.error, (label, errors(at))
    assert len(at.get("plotly_chart")) == 7
    assert "␣Paris" in at.dataframe[1].value["text"].tolist()  # the next-token table

    at.slider(key="attention_layer").set_value(5)
    at.radio(key="attention_view").set_value("one head").run()
    assert not at.exception and len(at.get("plotly_chart")) == 7


def test_explore_bad_input_shows_the_error_and_its_fix(home):
    at = start("explore")
    at.text_area(key="next_text").set_value("  ")
    button(at, "Predict").click().run()
    assert "the text is empty" in errors(at)
    at.radio(key="embeddings_source").set_value("words' input embeddings")
    at.text_input(key="embeddings_words").set_value("king,queen,man")
    button(at, "Project").click().run()
    assert "t-SNE needs at least 5 points" in errors(at)
    assert not at.exception


def test_models_page_lists_and_loads(home):
    at = start("models")
    assert at.title[0].value == "Models"
    assert "smollm2" in at.dataframe[0].value["name"].tolist()
    button(at, "Load the picked model now").click().run()
    assert "135" in at.success[0].value or "134" in at.success[0].value
    assert "smollm2" in at.dataframe[1].value["model"].tolist()


def test_functions_page_calls_validates_executes_and_traces(home):
    at = start("functions")
    assert at.title[0].value == "Functions"
    assert "fn_add_numbers" in at.text_area(key="fn_definitions").value  # the bundled example definitions
    assert at.text_area(key="fn_prompts").value.splitlines()[0] == "What is the sum of 2 and 3?"
    assert at.radio(key="fn_tool_choice").options == ["required", "auto"]
    assert at.checkbox(key="fn_execute").value is True

    button(at, "Call the first request").click().run()
    assert not at.exception and not at.error, errors(at)
    assert "Valid: fn_add_numbers(a=2.0, b=3.0)" in at.success[0].value
    shown = json.loads(at.code[0].value)  # the entry as the output file writes it: 2.0, not 2
    assert shown["result"] == 5.0 and '"a": 2.0' in at.code[0].value  # executed
    assert len(at.get("plotly_chart")) == 1  # the step-by-step trace
    trace = at.dataframe[-1].value
    assert {"step", "token", "prob", "forced", "allowed", "top"} <= set(trace.columns)
    assert trace["forced"].any() and (trace["allowed"] > 1).any()

    # Uploaded prompts (the course's JSON format) replace the requests; a batch runs them all.
    prompts = json.dumps([{"prompt": "Greet shrek"}, {"prompt": "Reverse the string 'hello'"}]).encode()
    at.get("file_uploader")[1].set_value(("prompts.json", prompts, "application/json")).run()
    assert at.text_area(key="fn_prompts").value == "Greet shrek\nReverse the string 'hello'"
    button(at, "Run every request (batch)").click().run()
    assert not at.exception and not at.error, errors(at)
    results = at.dataframe[0].value
    assert results["name"].tolist() == ["fn_greet", "fn_reverse_string"]
    assert json.loads(results["result"][1]) == "olleh"


def test_functions_page_bad_definitions_show_the_error_and_its_fix(home):
    at = start("functions")
    at.text_area(key="fn_definitions").set_value("[{not json")
    button(at, "Call the first request").click().run()
    assert "not valid JSON" in errors(at) and "give a JSON list of functions" in errors(at)
    at.text_area(key="fn_definitions").set_value('[{"name": "f", "parameters": {"x": {"type": "decimal"}}}]')
    button(at, "Call the first request").click().run()
    assert "unknown type 'decimal'" in errors(at)
    at.text_area(key="fn_definitions").set_value('[{"name": "f", "parameters": {"x": {"type": "number"}}}]')
    at.text_area(key="fn_prompts").set_value("  \n ")
    button(at, "Run every request (batch)").click().run()
    assert "there are no requests" in errors(at)
    assert not at.exception


def test_chat_through_an_openai_compatible_provider(home, smollm2, monkeypatch):
    from llm_playground.serve import BackgroundServer, create_app
    from llm_playground.ui.common import PROVIDER

    monkeypatch.setenv("LLMP_TEST_PROVIDER_KEY", "k3y")
    with BackgroundServer(create_app({"smollm2": smollm2}, api_key="k3y")) as server:
        at = start()
        at.selectbox(key="model_name").set_value(PROVIDER).run()
        at.text_input(key="provider_url").set_value(server.url)
        at.text_input(key="provider_model").set_value("smollm2")
        at.text_input(key="provider_key_env").set_value("LLMP_UNSET_VARIABLE").run()
        at = chat(at, "What is the capital of France?")
        assert "LLMP_UNSET_VARIABLE is not set" in errors(at)
        at.text_input(key="provider_key_env").set_value("LLMP_TEST_PROVIDER_KEY").run()
        at = chat(at, "What is the capital of France?")
        role, answer = bubbles(at)[-1]
        assert role == "assistant" and "Paris" in answer
        caption = at.chat_message[-1].caption[0].value
        assert "tokens/s" in caption and f"smollm2 at {server.url}" in caption
