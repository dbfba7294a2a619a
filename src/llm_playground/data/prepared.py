"""`llmp data prepare`: the corpus as token ids, ready for training — and `load_prepared` to read it back.

The contract the trainer reads (data/processed/):
- `train.bin`, `val.bin`: flat arrays of token ids, uint16 when the vocabulary fits (<= 65536) else uint32,
  readable with `np.memmap(path, dtype=meta["dtype"], mode="r")`;
- `meta.json`: vocab_size, dtype, tokenizer (path relative to the workspace), tokenizer_sha256,
  train_tokens, val_tokens, corpus_sha256, eos_id, created.
Each document is followed by the tokenizer's EOS id; the last `val_fraction` of all tokens is validation.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from llm_playground.data.corpus import file_sha256, read_documents, require_corpus
from llm_playground.errors import InputError, InvalidParameter
from llm_playground.tokenizer import SentencePieceTokenizer
from llm_playground.workspace import Workspace, atomic_open, atomic_write_text

CHUNK_CHARS = 4_000_000  # documents are encoded in batches of about this many characters
EncodeProgress = Callable[[int, int], None]  # (bytes of corpus encoded, corpus bytes)


@dataclass(frozen=True)
class Prepared:
    train: np.memmap
    val: np.memmap
    meta: dict[str, Any]


def token_dtype(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 65536 else "uint32"


def check_val_fraction(val_fraction: float) -> None:
    if not 0 < val_fraction <= 0.5:
        raise InvalidParameter(f"--val-fraction {val_fraction} is outside (0, 0.5]", "e.g. --val-fraction 0.1")


def prepare(workspace: Workspace, val_fraction: float = 0.1, threads: int | None = None,
            progress: EncodeProgress | None = None) -> dict[str, Any]:
    """Encode the corpus with the workspace's tokenizer and write train.bin, val.bin and meta.json."""
    check_val_fraction(val_fraction)
    corpus = require_corpus(workspace)
    tokenizer = require_tokenizer(workspace)
    if tokenizer.eos_id is None:
        raise InputError(f"{workspace.relative(tokenizer.path)} has no end-of-sequence token",
                         "retrain it: llmp tokenizer train")
    dtype = np.dtype(token_dtype(tokenizer.vocab_size))
    threads = threads or len(os.sched_getaffinity(0))
    workspace.processed_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=workspace.processed_dir) as scratch:
        total = 0
        for ids in _encode(tokenizer, corpus, threads, progress):
            scratch.write(ids.astype(dtype).tobytes())
            total += len(ids)
        scratch.flush()
        val_tokens = max(1, round(total * val_fraction))
        if total - val_tokens < 1:
            raise InputError(f"the corpus gives only {total} tokens", "collect more text: llmp data collect")
        tokens = np.memmap(scratch, dtype=dtype, mode="r", shape=(total,))
        _write_array(workspace.train_bin, tokens[: total - val_tokens])
        _write_array(workspace.val_bin, tokens[total - val_tokens:])
        del tokens
    meta = {
        "vocab_size": tokenizer.vocab_size, "dtype": dtype.name, "tokenizer": workspace.relative(tokenizer.path),
        "tokenizer_sha256": file_sha256(tokenizer.path), "train_tokens": total - val_tokens,
        "val_tokens": val_tokens, "corpus_sha256": file_sha256(corpus), "eos_id": tokenizer.eos_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write_text(workspace.meta_path, json.dumps(meta, indent=2) + "\n")  # last: it vouches for the .bin files
    return meta


def _encode(tokenizer: SentencePieceTokenizer, corpus: Path, threads: int,
            progress: EncodeProgress | None) -> Iterator[np.ndarray]:
    """Token ids of the corpus, a batch of documents at a time, EOS after each document."""
    size, done, eos = corpus.stat().st_size, 0, tokenizer.eos_id
    assert eos is not None  # prepare() refused a tokenizer without one
    newline = _newline_ids(tokenizer)
    batch: list[str] = []
    chars = 0

    def flush() -> np.ndarray:
        flat: list[int] = []
        if newline is None:
            for ids in tokenizer.encode_batch(batch, threads=threads):
                flat.extend(ids)
                flat.append(eos)
            return np.array(flat, dtype=np.int64)
        # Lines encode 2x faster than whole documents (SentencePiece's units are lines) and give the same ids.
        lines = [document.split("\n") for document in batch]
        encoded = iter(tokenizer.encode_batch([line for doc in lines for line in doc], threads=threads))
        for doc in lines:
            for number in range(len(doc)):
                if number:
                    flat.extend(newline)
                flat.extend(next(encoded))
            flat.append(eos)
        return np.array(flat, dtype=np.int64)

    for document in read_documents(corpus):
        batch.append(document)
        chars += len(document) + 2
        if chars >= CHUNK_CHARS:
            yield flush()
            done += sum(len(d.encode()) + 2 for d in batch)
            batch, chars = [], 0
            if progress:
                progress(min(done, size), size)
    if batch:
        yield flush()
    if progress:
        progress(size, size)


def _newline_ids(tokenizer: SentencePieceTokenizer) -> list[int] | None:
    """The ids of a newline when encoding line by line is exact (no piece spans a line break, no dummy
    prefix at line starts), else None: then documents are encoded whole."""
    newline = tokenizer.encode("\n")
    if any("\n" in tokenizer.token_text(i) for i in range(tokenizer.vocab_size)):
        return None
    probe = ["Is this a dagger", " which I see", "before me,\tthe handle"]
    joined = [*tokenizer.encode(probe[0]), *newline, *tokenizer.encode(probe[1]), *newline, *tokenizer.encode(probe[2])]
    return newline if tokenizer.encode("\n".join(probe)) == joined else None


def _write_array(path: Path, tokens: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        for start in range(0, len(tokens), 1 << 22):
            handle.write(np.ascontiguousarray(tokens[start:start + (1 << 22)]).tobytes())


def require_tokenizer(workspace: Workspace) -> SentencePieceTokenizer:
    path = workspace.tokenizer_path
    if not path.is_file():
        raise InputError(f"no tokenizer at {workspace.relative(path)}", "run: llmp tokenizer train")
    return SentencePieceTokenizer(path)


def load_prepared(workspace: Workspace) -> Prepared:
    """The prepared token arrays (memory-mapped) and their meta, checked against the tokenizer and corpus."""
    meta = read_meta(workspace)
    if meta is None:
        raise InputError(f"no processed data at {workspace.relative(workspace.processed_dir)}",
                         "run: llmp data prepare" + _earlier_stages(workspace))
    arrays = []
    for path, key in ((workspace.train_bin, "train_tokens"), (workspace.val_bin, "val_tokens")):
        expected = int(meta[key]) * np.dtype(meta["dtype"]).itemsize
        if not path.is_file() or path.stat().st_size != expected:
            raise InputError(f"{workspace.relative(path)} does not match meta.json "
                             f"({meta[key]} {meta['dtype']} tokens)", "re-run: llmp data prepare")
        arrays.append(np.memmap(path, dtype=meta["dtype"], mode="r"))
    if reason := stale_reason(workspace, meta):
        raise InputError(f"the processed data is stale: {reason}", "re-run: llmp data prepare")
    return Prepared(arrays[0], arrays[1], meta)


def read_meta(workspace: Workspace) -> dict[str, Any] | None:
    try:
        meta = json.loads(workspace.meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"{workspace.relative(workspace.meta_path)} is unreadable ({exc})",
                         "re-run: llmp data prepare") from None
    if not _valid_meta(meta):
        raise InputError(f"{workspace.relative(workspace.meta_path)} is not a prepare meta file",
                         "re-run: llmp data prepare")
    return meta


def _valid_meta(meta: Any) -> bool:
    required = ("vocab_size", "dtype", "tokenizer", "tokenizer_sha256", "train_tokens", "val_tokens", "eos_id")
    return (isinstance(meta, dict) and all(key in meta for key in required) and meta["dtype"] in ("uint16", "uint32")
            and all(isinstance(meta[key], int) and meta[key] > 0 for key in ("train_tokens", "val_tokens")))


def stale_reason(workspace: Workspace, meta: dict[str, Any]) -> str | None:
    """Why the processed data no longer matches the tokenizer or corpus it was made from, if it does not."""
    tokenizer = workspace.root / meta["tokenizer"]
    if not tokenizer.is_file():
        return f"its tokenizer {meta['tokenizer']} is gone"
    if file_sha256(tokenizer) != meta["tokenizer_sha256"]:
        return f"{meta['tokenizer']} changed since it was prepared"
    manifest = read_json_object(workspace.manifest_path)
    if manifest and meta.get("corpus_sha256") and manifest.get("sha256") != meta["corpus_sha256"]:
        return f"{workspace.relative(workspace.corpus_path)} changed since it was prepared"
    return None


def _earlier_stages(workspace: Workspace) -> str:
    if not workspace.corpus_path.is_file():
        return " (after: llmp data collect, llmp tokenizer train)"
    if not workspace.tokenizer_path.is_file():
        return " (after: llmp tokenizer train)"
    return ""


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object file, or None when it is missing, unreadable or not an object (status checks)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
