"""The Knowledge page through Streamlit's AppTest: real uploads (a real PDF), the real embedder and store."""

from __future__ import annotations

from pathlib import Path

import pytest
from pdfmaker import write_pdf
from streamlit.testing.v1 import AppTest

import llm_playground.ui

pytestmark = pytest.mark.slow
APP = str(Path(llm_playground.ui.__file__).parent / "app.py")


def test_upload_chunks_search_and_ask(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMP_HOME", str(tmp_path))
    monkeypatch.setenv("LLMP_THREADS", "1")
    pdf = write_pdf(tmp_path / "made.pdf", ["Glaciers are rivers of ice.", "The Aletsch glacier is the largest in "
                                            "the Alps, 23 kilometres long."]).read_bytes()
    at = AppTest.from_file(APP, default_timeout=180).run()
    at.switch_page("views/knowledge.py").run()
    assert not at.exception
    at.file_uploader(key="kb_uploads").set_value([
        ("etna.md", b"# Etna\n\nMount Etna is an active volcano on the island of Sicily.\n", "text/markdown"),
        ("ice.pdf", pdf, "application/pdf"), ("broken.pdf", b"%PDF-1.4 nothing", "application/pdf")])
    at.button(key="kb_add").click().run()
    assert not at.exception
    assert "added 2" in at.success[0].value and "broken.pdf" in at.warning[0].value
    files = at.dataframe[0].value
    assert sorted(files["file"]) == ["data/knowledge/etna.md", "data/knowledge/ice.pdf"]
    assert (tmp_path / "data/knowledge/ice.pdf").exists()

    at.text_input(key="kb_query").set_value("largest glacier in the Alps").run()
    results = at.dataframe[-1].value
    assert results["source"][0] == "data/knowledge/ice.pdf" and results["dense"][0] > 0 and results["bm25"][0] > 0

    at.text_input(key="kb_question").set_value("On which island is Mount Etna?")
    at.toggle(key="kb_extractive").set_value(True)
    at.button(key="kb_ask").click().run()
    assert not at.exception
    answer = " ".join(m.value for m in at.markdown)
    assert "Sicily" in answer and "(#source-1)" in answer  # the citation links to its source below
    assert at.expander[0].label.startswith("[1] data/knowledge/etna.md")

    at.text_input(key="kb_question").set_value("Who won the 1998 football world cup?")
    at.toggle(key="kb_extractive").set_value(False)
    at.button(key="kb_ask").click().run()
    assert not at.exception and "documents do not say" in at.warning[-1].value
