"""The web app end to end: `llmp ui` as a real server, driven by a real headless Chromium through Playwright.

Screenshots of every page land in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Debian's wrapper script first; the binary itself if the wrapper misbehaves.
CANDIDATES = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(url: str, server: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else ""
            raise AssertionError(f"llmp ui exited with {server.returncode}: {output}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("llmp ui did not become healthy in time")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="install the test extras: pip install -e '.[test]'")
    found = [path for path in CANDIDATES if Path(path).is_file()] or [shutil.which("chromium")]
    if not any(found):
        pytest.skip("no Chromium found: run `make test` as root (it installs Debian's chromium) or "
                    "`apt-get install chromium`")
    with sync_api.sync_playwright() as playwright:
        last_error: Exception | None = None
        for path in found:
            try:
                launched = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
            except Exception as exc:  # the wrapper script can fail where the binary works
                last_error = exc
                continue
            yield launched
            launched.close()
            return
        pytest.fail(f"Chromium would not start: {last_error}")


@contextlib.contextmanager
def running_ui(home: Path) -> Iterator[str]:
    """A real `llmp ui` on a free port of 127.0.0.1 over the workspace `home`; yields its URL."""
    port = _free_port()
    env = {**os.environ, "LLMP_HOME": str(home), "LLMP_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "llm_playground.cli.main", "ui", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_ui(tmp_path_factory.mktemp("ui-home")) as url:
        yield url


def test_chat_and_every_page_in_a_real_browser(browser, server):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(90_000)
    page.goto(server)
    chat_input = page.get_by_test_id("stChatInputTextArea")
    chat_input.wait_for()

    page.get_by_test_id("stSidebar").get_by_text("precise", exact=True).click()  # greedy: a known answer
    # The click reruns the script; a message sent before that rerun ends would be sampled with the old preset.
    expect(page.get_by_test_id("stSidebar").get_by_test_id("stSliderThumbValue").first).to_have_text("0.00")
    chat_input.fill("What is the capital of France?")
    chat_input.press("Enter")
    messages = page.get_by_test_id("stChatMessage")
    answer = messages.nth(1)
    answer.get_by_text("tokens/s").wait_for()  # the caption appears once the stream has ended
    assert "Paris" in answer.inner_text()
    assert "What is the capital of France?" in messages.nth(0).inner_text()
    page.get_by_test_id("stSidebar").get_by_text("What is the capital of France?").wait_for()  # listed
    page.screenshot(path=str(ARTIFACTS / "ui-chat.png"), full_page=True)

    page.reload()  # the conversation survives a reload (SQLite) and reopens from the sidebar
    page.get_by_test_id("stSidebar").get_by_text("What is the capital of France?").click()
    page.get_by_test_id("stChatMessage").nth(1).get_by_text("Paris").wait_for()

    nav = page.get_by_test_id("stSidebarNav")
    nav.get_by_role("link", name="Explore", exact=True).click()
    page.get_by_role("heading", name="Explore", exact=True).wait_for()
    page.get_by_role("tab", name="Next token").click()
    page.get_by_role("button", name="Predict").click()
    page.locator(".js-plotly-plot").first.wait_for()
    assert "Paris" in page.get_by_test_id("stTabs").inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-explore.png"), full_page=True)

    nav.get_by_role("link", name="Functions", exact=True).click()
    page.get_by_role("button", name="Call the first request").click()
    page.get_by_text("Valid: fn_add_numbers(a=2.0, b=3.0)").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "ui-functions.png"), full_page=True)
    page.locator(".js-plotly-plot").first.screenshot(path=str(ARTIFACTS / "ui-functions-trace.png"))

    nav.get_by_role("link", name="Train", exact=True).click()
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    page.get_by_role("heading", name="Pipeline", exact=True).wait_for()
    page.get_by_test_id("stDataFrame").first.wait_for()
    page.wait_for_timeout(1000)  # the table's canvas draws after the element appears
    page.screenshot(path=str(ARTIFACTS / "ui-train.png"), full_page=True)

    nav.get_by_role("link", name="Models", exact=True).click()
    page.get_by_role("heading", name="Models", exact=True).wait_for()
    page.get_by_text("Loaded in this process").wait_for()
    assert "smollm2" in page.get_by_test_id("stMain").inner_text()
    page.screenshot(path=str(ARTIFACTS / "ui-models.png"), full_page=True)
    page.close()


def test_two_sessions_at_once_and_stop(browser, server):
    """One tab writes a long story while another loads a page and chats; then Stop keeps the story so far."""
    from playwright.sync_api import expect

    story_tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    other_tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    for page in (story_tab, other_tab):
        page.set_default_timeout(90_000)

    story_tab.goto(server)
    story_tab.get_by_role("spinbutton", name="Seed").fill("1")  # seed 1: a story longer than 256 tokens
    story_tab.get_by_role("spinbutton", name="Seed").press("Enter")
    # The longest answers allowed, so the story is still being written when the other tab's answer arrives.
    story_tab.get_by_test_id("stSlider").filter(has_text="Max new tokens").get_by_role("slider").press("End")
    story_tab.get_by_test_id("stSlider").filter(has_text="2048").wait_for()
    chat_input = story_tab.get_by_test_id("stChatInputTextArea")
    chat_input.fill("Write a very long story about a dragon who learns to bake bread.")
    chat_input.press("Enter")
    story = story_tab.get_by_test_id("stChatMessage").nth(1)
    story_tab.wait_for_function(
        "() => (document.querySelectorAll('[data-testid=stChatMessage]')[1]?.innerText || '').length > 40")

    start = time.monotonic()
    other_tab.goto(f"{server}/models")
    other_tab.get_by_role("heading", name="Models", exact=True).wait_for()
    other_tab.get_by_text("Loaded in this process").wait_for()
    page_load_s = time.monotonic() - start
    other_tab.get_by_test_id("stSidebarNav").get_by_role("link", name="Chat", exact=True).click()
    other_tab.get_by_test_id("stSidebar").get_by_text("precise", exact=True).click()
    # As above: a message sent before the preset's rerun ends would be sampled with the old temperature.
    expect(other_tab.get_by_test_id("stSidebar").get_by_test_id("stSliderThumbValue").first).to_have_text("0.00")
    other_input = other_tab.get_by_test_id("stChatInputTextArea")
    other_input.fill("What is the capital of France?")
    other_input.press("Enter")
    other_answer = other_tab.get_by_test_id("stChatMessage").nth(1)
    other_answer.get_by_text("tokens/s").wait_for()
    assert "Paris" in other_answer.inner_text()
    # Both were generating at once: the story is still being written after the other tab's answer came.
    assert "tokens/s" not in story.inner_text()
    assert page_load_s < 20, f"a page took {page_load_s:.1f} s to load while another session generated"

    story_tab.get_by_role("button", name="Stop").click()
    story = story_tab.get_by_test_id("stChatMessage").nth(1)
    story.get_by_text("stopped").wait_for()
    assert "dragon" in story.inner_text().lower() or len(story.inner_text()) > 60
    story_tab.screenshot(path=str(ARTIFACTS / "ui-chat-stopped.png"))
    story_tab.context.close()
    other_tab.context.close()


def test_agent_page_in_a_real_browser(browser, server):
    """A task on the Agent page: the steps appear, then the templated answer and the recorded timeline."""
    import datetime as dt

    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(120_000)
    page.goto(f"{server}/agent")
    page.get_by_role("heading", name="Agent", exact=True).wait_for()
    task = page.get_by_label("Task")
    task.fill("What day of the week is it today?")
    task.press("Control+Enter")  # commits the text area's value before the button's rerun
    page.get_by_test_id("stMain").get_by_text("template", exact=True).click()
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Run").click()
    answer = page.get_by_test_id("stAlert").filter(has_text="Answer:")
    answer.wait_for()
    assert dt.datetime.now(dt.UTC).strftime("%A") in answer.inner_text()
    assert "answered · 2 steps" in page.get_by_test_id("stMain").inner_text()  # the status box's label
    page.get_by_test_id("stDataFrame").first.wait_for()
    page.wait_for_timeout(1000)  # the table's canvas draws after the element appears
    page.screenshot(path=str(ARTIFACTS / "ui-agent.png"), full_page=True)
    page.close()


def _grid_text(grid) -> str:
    """A dataframe draws on a canvas; its cells are also in an accessible table, which is what this reads."""
    grid.locator("table[role=grid]").first.wait_for(state="attached")
    return grid.locator("table[role=grid]").first.text_content() or ""


def test_knowledge_page_in_a_real_browser(browser, server, tmp_path):
    """Upload a Markdown file and a real PDF, see them chunked, search with each retriever's score, ask and cite."""
    from pdfmaker import write_pdf
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    # Names of this test's own, so it holds whatever other tests have added to the shared server's base.
    markdown = tmp_path / "browser-etna.md"
    markdown.write_text("# Etna\n\nMount Etna is an active volcano on the island of Sicily.\n")
    alps = "The Aletsch glacier is the largest in the Alps, 23 kilometres long."
    pdf = write_pdf(tmp_path / "browser-ice.pdf", ["Glaciers are rivers of ice.", alps])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(90_000)
    page.goto(f"{server}/knowledge")
    page.get_by_role("heading", name="Knowledge", exact=True).wait_for()
    main = page.get_by_test_id("stMain")

    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files([str(markdown), str(pdf)])
    main.get_by_text("browser-ice.pdf", exact=True).wait_for()  # both uploads listed before adding them
    main.get_by_text("browser-etna.md", exact=True).wait_for()
    page.get_by_role("button", name="Add to the knowledge base").click()
    added = page.get_by_test_id("stAlert").filter(has_text="chunks/s")
    added.wait_for()
    assert "added 2" in added.inner_text()
    files = _grid_text(main.get_by_test_id("stDataFrame").first)
    assert "data/knowledge/browser-etna.md" in files and "data/knowledge/browser-ice.pdf" in files

    page.get_by_role("tab", name="Search").click()
    search = page.get_by_role("textbox", name="Search")
    search.fill("largest glacier in the Alps")
    search.press("Enter")
    results = page.get_by_test_id("stTabs").get_by_test_id("stDataFrame").filter(has_text="bm25 rank")
    expect(results).to_have_count(1)
    table = _grid_text(results)
    assert "data/knowledge/browser-ice.pdf" in table and "Aletsch" in table
    page.wait_for_timeout(1000)  # the table's canvas draws after the element appears
    page.screenshot(path=str(ARTIFACTS / "ui-knowledge-search.png"), full_page=True)

    page.get_by_role("tab", name="Ask").click()
    question = page.get_by_role("textbox", name="Question")
    question.fill("On which island is Mount Etna?")
    question.press("Enter")
    main.get_by_text("Extractive (quote the closest sentence, no language model)").click()
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Ask", exact=True).click()
    answer = main.get_by_test_id("stMarkdown").filter(has=page.get_by_role("link", name="[1]", exact=True))
    answer.wait_for()
    assert "Sicily" in answer.inner_text()
    assert answer.get_by_role("link", name="[1]", exact=True).get_attribute("href").endswith("#source-1")
    source = main.get_by_test_id("stExpander").filter(has_text="[1] data/knowledge/browser-etna.md")
    expect(source).to_have_count(1)
    assert "Sicily" in source.inner_text()  # the cited source opens below the answer
    page.screenshot(path=str(ARTIFACTS / "ui-knowledge-ask.png"), full_page=True)
    page.close()
