"""The knowledge base on real components: the bundled MiniLM, the SQLite store, real files (a real PDF)."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from pdfmaker import write_pdf

from llm_playground.errors import InputError
from llm_playground.knowledge import open_kb
from llm_playground.knowledge.chunking import chunk_sections
from llm_playground.knowledge.embedder import minilm_dir
from llm_playground.knowledge.lexical import query_terms
from llm_playground.knowledge.readers import Section, Unreadable, read_file
from llm_playground.knowledge.store import Store

TEXTS = ["The quick brown fox jumps over the lazy dog.", "Python lists are mutable sequences.",
         "Ein Satz auf Deutsch, mit Umlauten: Größe.", "word " * 400]


@pytest.mark.slow
def test_minilm_equals_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    folder = str(minilm_dir())  # the same extracted files, never a hub
    reference = SentenceTransformer(modules=[Transformer(folder, max_seq_length=256), Pooling(384, "mean"),
                                             Normalize()], device="cpu")
    expected = reference.encode(TEXTS, convert_to_numpy=True)
    got = minilm.embed(TEXTS)
    assert got.shape == (4, 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_readers(tmp_path):
    html = tmp_path / "page.html"
    html.write_text("<html><head><title>Rivers</title><style>p{color:red}</style></head><body><script>var x=1;"
                    "</script><h1>Rivers</h1><p>The Nile is long.</p><p>The Amazon &amp; its basin.</p></body></html>")
    section = read_file(html)[0]
    assert section.title == "Rivers"
    assert "The Nile is long." in section.text and "The Amazon & its basin." in section.text
    assert "var x" not in section.text and "color" not in section.text

    jsonl = tmp_path / "notes.jsonl"
    jsonl.write_text('{"text": "first note", "author": "ana"}\n\n{"text": "second", "title": "Two"}\n')
    first, second = read_file(jsonl)
    assert first.metadata == {"author": "ana", "line": 1} and second.title == "Two"

    pdf = write_pdf(tmp_path / "doc.pdf", ["Page one talks about volcanoes.", "Page two is about glaciers."],
                    title="Earth")
    pages = read_file(pdf)
    assert [p.metadata["page"] for p in pages] == [1, 2] and "glaciers" in pages[1].text and pages[0].title == "Earth"

    for name, data, reason in [("empty.md", b"  \n", "empty"), ("blob.txt", b"ab\x00cd", "binary"),
                               ("broken.pdf", b"%PDF-1.4\nnot a pdf", "PDF"), ("latin.txt", b"caf\xe9", "UTF-8"),
                               ("image.png", b"\x89PNG", "unsupported")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(Unreadable, match=reason):
            read_file(tmp_path / name)


def test_chunks_fit_the_embedder_and_keep_spans(minilm):
    paragraphs = [f"Paragraph {i} says something about topic number {i}, at some length. " * 6 for i in range(20)]
    text = "\n\n".join(paragraphs)
    chunks = chunk_sections([Section(text, "T", {"k": 1})], minilm, chunk_tokens=128, overlap=16)
    assert len(chunks) > 5
    for i, chunk in enumerate(chunks):
        assert chunk.position == i and chunk.metadata == {"k": 1}
        assert text[chunk.start:chunk.end] == chunk.text  # the span points at the text itself
        assert minilm.count_tokens(chunk.text) <= 128
    assert all(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))  # neighbours overlap
    assert chunks[-1].end == len(text.rstrip())


def test_query_terms():
    assert query_terms('what is "NEAR(a b)" OR x* of lists') == ["near", "b", "x", "list"]  # stopwords left out
    assert query_terms("the") == ["the"] and query_terms("?!") == []


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "volcano.md").write_text("# Volcanoes\n\nA volcano is an opening in the crust where magma erupts. "
                                       "Mount Etna in Sicily is one of the most active volcanoes in Europe.\n")
    (folder / "bread.txt").write_text("Baking bread\n\nKnead the dough for ten minutes, let it rise for an hour, "
                                      "then bake it at 220 degrees until the crust is brown.\n")
    write_pdf(folder / "glacier.pdf", ["Glaciers are rivers of ice.", "The Aletsch glacier is the largest in the "
                                       "Alps, 23 kilometres long."], title="Ice")
    (folder / "faq.jsonl").write_text(json.dumps({"text": "The library opens at nine on Saturdays.",
                                                  "topic": "hours"}) + "\n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj garbage")
    (folder / "empty.txt").write_text("")
    (folder / "blob.md").write_bytes(bytes(range(256)))
    return folder


def test_add_search_update_remove(tmp_path, docs, minilm):
    kb = open_kb(tmp_path, embedder=minilm)
    events = []
    report = kb.add([docs], progress=lambda *e: events.append(e))
    assert sorted(report.added) == ["docs/bread.txt", "docs/faq.jsonl", "docs/glacier.pdf", "docs/volcano.md"]
    assert {p for p, _ in report.skipped} == {"docs/broken.pdf", "docs/empty.txt", "docs/blob.md"}
    assert report.chunks == kb.status()["chunks"] >= 5 and events[-1][0] == "chunks"

    hits = kb.search("Which glacier is the longest in the Alps?", k=3)
    assert hits[0].source == "docs/glacier.pdf" and hits[0].metadata["page"] == 2
    assert hits[0].dense is not None and hits[0].bm25 is not None and hits[0].dense_rank == 1
    assert kb.search("when does the library open", mode="bm25", k=1)[0].metadata["topic"] == "hours"
    assert kb.search("an active mountain that erupts", mode="dense", k=1)[0].source == "docs/volcano.md"
    assert [h.source for h in kb.search("crust", k=5, filters={"source": "*.txt"})] == ["docs/bread.txt"]
    assert kb.search("crust", k=5, filters={"topic": "hours"})[0].source == "docs/faq.jsonl"

    again = kb.add([docs])
    assert again.added == [] and len(again.unchanged) == 4 and again.chunks == 0  # sha256 unchanged: no work
    (docs / "bread.txt").write_text("Baking bread\n\nRye bread needs a sourdough starter.\n")
    changed = kb.add([docs / "bread.txt"])
    assert changed.replaced == ["docs/bread.txt"]
    assert "sourdough" in kb.search("rye sourdough", k=1)[0].text
    assert not any("Knead" in h.text for h in kb.search("knead the dough", k=10))

    assert kb.remove(docs / "bread.txt") == ["docs/bread.txt"]
    assert "docs/bread.txt" not in [f.path for f in kb.files()]
    with pytest.raises(InputError, match="not in the knowledge base"):
        kb.remove(docs / "bread.txt")
    with pytest.raises(InputError, match="no such file"):
        kb.add([tmp_path / "nowhere.md"])
    with pytest.raises(InputError, match="empty"):
        kb.search("  ")


def test_interrupted_add_resumes(tmp_path, docs, minilm):
    kb = open_kb(tmp_path, embedder=minilm)
    seen: list[str] = []

    def interrupt(event, path, done, total):
        if event == "file":
            seen.append(path)
            if len(seen) == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        kb.add([docs], progress=interrupt)
    assert [f.path for f in kb.files()] == [seen[0]]  # the first file committed, the second not half-written
    kb2 = open_kb(tmp_path, embedder=minilm)  # a new process, as after Ctrl-C
    report = kb2.add([docs])
    assert report.unchanged == [seen[0]] and len(report.added) == 3


def test_a_version_1_store_opens_with_its_chunks(tmp_path, minilm):
    from llm_playground.knowledge.store import MIGRATIONS, NewChunk
    from llm_playground.migrations import migrate

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, MIGRATIONS[:1], label="old")  # the schema as version 1 wrote it (with its FTS5 table)
    db.execute("INSERT INTO files(path, sha256, title, bytes, chunks, added_at) VALUES ('a.md', 'x', 'A', 1, 1, 0)")
    vector = minilm.embed(["Lava flows downhill."])[0]
    db.execute("INSERT INTO chunks(file_id, position, title, text, start, end, metadata, vector) VALUES "
               "(1, 0, 'A', 'Lava flows downhill.', 0, 20, '{}', ?)", (vector.tobytes(),))
    db.execute("INSERT INTO chunks_fts(rowid, title, text) VALUES (1, 'A', 'Lava flows downhill.')")
    db.close()
    store = Store(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert [h.text for h in store.search("lava", minilm.embed(["lava"])[0], k=1)] == ["Lava flows downhill."]
    store.put_file("b.md", "y", "B", 1, [NewChunk("Ice melts.", "B", 0, 0, 10)], minilm.embed(["Ice melts."]))
    assert store.chunk_count() == 2


def test_store_schema_version_and_foreign_file(tmp_path):
    path = tmp_path / "kb.sqlite3"
    Store(path).close()
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(InputError, match="newer"):
        Store(path)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(InputError, match="not a knowledge base"):
        Store(junk)


@pytest.mark.parametrize(("line", "fragment"), [
    ('{"query": "x", "k": "three"}', '"k" is'), ('{"query": "x", "k": null}', '"k" is'),
    ('{"query": "x", "filters": ["a"]}', '"filters"'), ('{"query": "x", "filters": {"a": {"b": 1}}}', '"filters"')])
def test_search_input_lines_with_bad_fields_are_input_errors(tmp_path, line, fragment):
    from llm_playground.cli.knowledge import search_command

    (tmp_path / "q.jsonl").write_text(line + "\n")
    with pytest.raises(InputError, match=fragment):
        search_command(None, input_path=tmp_path / "q.jsonl", kb=tmp_path / "kb.sqlite3")


def test_bad_options_are_refused_before_anything_is_stored(tmp_path):
    from llm_playground.errors import InvalidParameter

    kb = open_kb(tmp_path / "kb.sqlite3")
    with pytest.raises(InvalidParameter, match="chunks of -5 tokens"):
        kb.configure(chunk_tokens=-5)
    assert kb.chunk_tokens == 256 and kb.store.get_meta("chunk_tokens") is None  # not kept for the next add
    kb.configure(chunk_tokens=64, overlap=8)
    assert (kb.chunk_tokens, kb.overlap) == (64, 8)
    for options, fragment in (({"k": 0}, "k must be"), ({"mode": "fuzzy"}, "unknown search mode")):
        with pytest.raises(InvalidParameter, match=fragment):  # an empty base refuses them too
            kb.search("anything", **options)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="cannot create"):
        open_kb(tmp_path / "file" / "kb.sqlite3")


def test_a_file_removed_by_another_process_during_a_search_is_left_out(tmp_path):
    """The indexes are loaded, then another connection (another process) removes a file before the hits
    are read back: the search answers with what is still there instead of a KeyError."""
    from llm_playground.knowledge.store import NewChunk

    path = tmp_path / "kb.sqlite3"
    other = Store(path)

    class Interleaved(Store):
        def hydrate(self, scored):  # the other process's remove lands between the two steps
            other.remove("a.md")
            return super().hydrate(scored)

    store = Interleaved(path)
    unit = np.eye(4, dtype=np.float32)
    store.put_file("a.md", "x", "A", 1, [NewChunk("Glaciers move slowly.", "A", 0, 0, 21)], unit[:1])
    store.put_file("b.md", "y", "B", 1, [NewChunk("Glaciers melt in summer.", "B", 0, 0, 24)], unit[1:2])
    hits = store.search("glaciers", unit[0], k=2)
    assert [h.source for h in hits] == ["b.md"] and hits[0].dense == pytest.approx(0.0)
