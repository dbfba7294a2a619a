"""Grounded answers on the real bundled models and a real store; one end-to-end run of the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pdfmaker import write_pdf

from llm_playground.errors import ContextOverflow
from llm_playground.generate import SamplingParams
from llm_playground.knowledge import open_kb
from llm_playground.knowledge.answer import NOT_FOUND, ask, check_citations

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kb(tmp_path_factory, minilm):
    root = tmp_path_factory.mktemp("ask")
    (root / "volcano.md").write_text("# Volcanoes\n\nMount Etna is an active volcano on the island of Sicily. "
                                     "Its eruptions are frequent and mostly effusive.\n")
    (root / "bread.md").write_text("# Bread\n\nKnead the dough for ten minutes and let it rise for one hour "
                                   "before baking.\n")
    base = open_kb(root, embedder=minilm)
    base.add([root])
    return base


def test_check_citations_drops_sources_never_given():
    assert check_citations("Etna is in Sicily [1][3]. See [2] and [1].", 2) == (
        "Etna is in Sicily [1]. See [2] and [1].", [1, 2], [3])


def test_answer_cites_real_chunks(kb, smollm2):
    result = ask(kb, "On which island is Mount Etna?", smollm2, SamplingParams(), k=2)
    assert not result.abstained and "Sicily" in result.answer
    assert result.citations and all(c.hit in result.sources for c in result.citations)
    assert result.citations[0].hit.source == "volcano.md"
    payload = result.to_dict()
    assert {"answer", "abstained", "citations", "retrieved", "timings"} <= payload.keys()
    assert payload["citations"][0]["span"] == [result.citations[0].hit.start, result.citations[0].hit.end]


def test_abstains_when_nothing_relevant_is_found(kb, smollm2):
    result = ask(kb, "Who won the 1998 football world cup?", smollm2, SamplingParams())
    assert result.abstained and result.reason == "retrieval" and result.answer == NOT_FOUND
    assert result.citations == [] and "generate_ms" not in result.timings  # the model never ran


def test_extractive_quotes_a_retrieved_sentence(kb):
    result = ask(kb, "How long should the dough rise?", extractive=True)
    sentence = result.answer.rsplit(" [", 1)[0]
    assert "rise for one hour" in sentence and sentence in " ".join(result.citations[0].hit.text.split())


def test_question_longer_than_the_context_is_refused(kb, smollm2):
    with pytest.raises(ContextOverflow, match="question has"):
        ask(kb, "why " * 9000, smollm2, SamplingParams())


def test_cli_kb_add_search_ask_end_to_end(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "rivers.md").write_text("# Rivers\n\nThe Danube flows through ten countries, more than any other "
                                    "river, and ends in the Black Sea.\n")
    write_pdf(docs / "moons.pdf", ["Saturn has more moons than any other planet.", "Titan is its largest moon."])
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    env = {**os.environ, "LLMP_HOME": str(tmp_path)}

    def llmp(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "llm_playground.cli.main", *args], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=600)

    added = llmp("kb", "add", str(docs), "--json")
    assert added.returncode == 0, added.stderr
    report = json.loads(added.stdout)
    assert sorted(report["added"]) == ["docs/moons.pdf", "docs/rivers.md"]
    assert report["skipped"][0]["path"] == "docs/corrupt.pdf"
    (tmp_path / "q.jsonl").write_text('{"query": "largest moon of Saturn"}\n{"query": "Black Sea"}\n')
    searched = llmp("kb", "search", "--input", "q.jsonl", "--k", "1")
    lines = [json.loads(line) for line in searched.stdout.splitlines()]
    assert [line["hits"][0]["source"] for line in lines] == ["docs/moons.pdf", "docs/rivers.md"]
    assert lines[0]["hits"][0]["metadata"]["page"] == 2
    asked = llmp("ask", "Which river flows through ten countries?", "--json", "--max-new-tokens", "48")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert not answer["abstained"] and answer["citations"][0]["source"] == "docs/rivers.md"
