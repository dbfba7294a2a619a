"""The chat's features in a real headless Chromium (one browser session): what AppTest cannot see, such as the
browser keeping a radio's old tick (issue 17, bug 1), the "generating…" state and a live Stop.

Screenshots land in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import pytest
from test_ui_browser import ARTIFACTS, browser, running_ui  # noqa: F401 (a fixture)

from llm_playground.conversations import ConversationStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    home = tmp_path_factory.mktemp("chat-home")
    with running_ui(home) as url:
        yield url, home


def test_chat_walkthrough_in_a_real_browser(browser, app):  # noqa: F811
    from playwright.sync_api import expect

    url, home = app
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.set_default_timeout(90_000)
    page.goto(url)
    sidebar = page.get_by_test_id("stSidebar")
    chat_input = page.get_by_test_id("stChatInputTextArea")
    messages = page.get_by_test_id("stChatMessage")
    chat_input.wait_for()
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()  # bug 4: nothing to stop yet

    sidebar.get_by_text("precise", exact=True).click()
    expect(sidebar.get_by_test_id("stSliderThumbValue").first).to_have_text("0.00")
    chat_input.fill("What is the capital of France?")
    chat_input.press("Enter")
    messages.nth(1).get_by_text("tokens/s").wait_for()
    page.get_by_text("Context: ").wait_for()  # bug 3: the context gauge
    page.screenshot(path=str(ARTIFACTS / "chat-gauge.png"), full_page=True)

    # Bug 1: New chat, then a setting change, then a message: a new conversation, the old one untouched.
    sidebar.get_by_role("button", name="New chat").click()
    expect(messages).to_have_count(0)
    sidebar.get_by_text("balanced", exact=True).click()
    expect(sidebar.get_by_test_id("stSliderThumbValue").first).to_have_text("0.70")
    page.wait_for_timeout(500)
    expect(messages).to_have_count(0)  # the old conversation did not come back
    sidebar.get_by_text("precise", exact=True).click()
    expect(sidebar.get_by_test_id("stSliderThumbValue").first).to_have_text("0.00")
    chat_input.fill("What is the capital of Italy?")
    chat_input.press("Enter")
    messages.nth(1).get_by_text("tokens/s").wait_for()
    expect(messages).to_have_count(2)
    store = ConversationStore(home / "conversations.sqlite3")  # the database says the same
    conversations = store.list()
    assert [c.title for c in conversations] == ["What is the capital of Italy?", "What is the capital of France?"]
    assert [m.role for m in store.messages(conversations[1].id)] == ["user", "assistant"]
    assert [m.content for m in store.messages(conversations[0].id)][0] == "What is the capital of Italy?"

    # Bug 4: a visible "generating…" state, Stop live only meanwhile, and a notice that says what Stop kept.
    sidebar.get_by_role("button", name="New chat").click()
    expect(messages).to_have_count(0)
    sidebar.get_by_role("spinbutton", name="Seed").fill("1")
    sidebar.get_by_role("spinbutton", name="Seed").press("Enter")
    sidebar.get_by_text("balanced", exact=True).click()
    chat_input.fill("Write a very long story about a dragon who learns to bake bread.")
    chat_input.press("Enter")
    page.get_by_text("generating…").wait_for()
    page.wait_for_function(
        "() => (document.querySelectorAll('[data-testid=stChatMessage]')[1]?.innerText || '').length > 60")
    page.screenshot(path=str(ARTIFACTS / "chat-generating.png"), full_page=True)
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_enabled()
    stop.click()
    page.get_by_text("The answer was stopped").wait_for()
    messages.nth(1).get_by_text("stopped").wait_for()
    expect(page.get_by_role("button", name="Stop")).to_have_count(1)  # the stopped run's elements are gone
    expect(page.get_by_role("button", name="Stop")).to_be_disabled()

    # Regenerate keeps the stopped answer as an alternative: "2 / 2", and back to "1 / 2".
    page.get_by_role("button", name="Regenerate").click()
    page.get_by_text("generating…").wait_for()
    page.wait_for_timeout(1500)
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("2 / 2").wait_for()
    page.screenshot(path=str(ARTIFACTS / "chat-branches.png"), full_page=True)

    # Clear asks first.
    page.get_by_role("button", name="Clear", exact=True).click()
    page.get_by_text("Remove every message of this conversation?").wait_for()
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(messages).to_have_count(2)

    # The token view of the first conversation (its settings come back with it: greedy), and a branch from a token.
    sidebar.get_by_text("What is the capital of France?").click()
    messages.nth(1).get_by_text("Paris").wait_for()
    page.get_by_text("Token view").click()
    token = page.locator(".llmp-token").first
    token.wait_for()
    assert "p=" in token.get_attribute("title")
    token.hover()
    page.screenshot(path=str(ARTIFACTS / "chat-token-view.png"), full_page=True)
    page.get_by_text("Continue from here with another token").click()
    page.get_by_text("Instead", exact=True).wait_for()
    page.get_by_role("button", name="Continue from here with this token instead").click()
    page.get_by_text("2 / 2").wait_for()
    page.screenshot(path=str(ARTIFACTS / "chat-token-branch.png"), full_page=True)

    # Side by side: temperature 0 and 1, short answers.
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Side by side").click()
    page.get_by_role("heading", name="Side by side").wait_for()
    slider = sidebar.get_by_test_id("stSlider").filter(has_text="Max new tokens").get_by_role("slider")
    slider.press("Home")
    for _ in range(23):
        slider.press("ArrowRight")
    sidebar.get_by_test_id("stSlider").filter(has_text="Max new tokens").get_by_text("24", exact=True).wait_for()
    compare_input = page.get_by_test_id("stChatInputTextArea")
    compare_input.fill("What is the capital of France?")
    compare_input.press("Enter")
    page.get_by_role("button", name="Save as a conversation").wait_for()
    expect(page.get_by_text("tokens/s")).to_have_count(2)
    page.screenshot(path=str(ARTIFACTS / "side-by-side.png"), full_page=True)
    page.get_by_role("button", name="Save as a conversation").click()
    page.get_by_text("Saved as conversation").wait_for()
    page.close()
