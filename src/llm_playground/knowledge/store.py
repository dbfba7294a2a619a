"""The knowledge store: one SQLite file holding files, chunks, their vectors and an FTS5 index.

Why this shape (benchmarks/rag.py measures it against LanceDB, see docs/knowledge.md): SQLite is in the
standard library and transactions make each file's add atomic; exact dense search over a normalised
float32 matrix kept in memory is a single matrix-vector product (~15 ms of CPU at 100k chunks), so no
approximate index is needed at this scale; BM25 is a sparse matrix built from the same rows
(`lexical.py`). Both are rebuilt from SQLite when its `revision` changes. Hybrid search fuses the two
rankings by reciprocal rank.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from llm_playground.errors import InputError, InvalidParameter
from llm_playground.knowledge.lexical import LexicalIndex
from llm_playground.migrations import migrate

Mode = Literal["hybrid", "dense", "bm25"]
MODES = ("hybrid", "dense", "bm25")
RRF_K = 60  # reciprocal-rank fusion's constant (Cormack et al. 2009): 1 / (60 + rank)
CANDIDATES = 50  # how deep each retriever's list goes before fusion
RESCORE = 256  # dense candidates from the float16 pass that are scored again in float32


def _v1(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL, "
               "title TEXT NOT NULL, bytes INTEGER NOT NULL, chunks INTEGER NOT NULL, added_at REAL NOT NULL)")
    db.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files(id) "
               "ON DELETE CASCADE, position INTEGER NOT NULL, title TEXT NOT NULL, text TEXT NOT NULL, "
               "start INTEGER NOT NULL, end INTEGER NOT NULL, metadata TEXT NOT NULL, vector BLOB NOT NULL)")
    db.execute("CREATE INDEX chunks_file ON chunks(file_id)")
    # Its own copy of the text: simplest to keep in step (rows go in and out with the chunk, same transaction).
    db.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5(title, text, tokenize='porter unicode61')")


def _v2(db: sqlite3.Connection) -> None:
    # FTS5's bm25() scored every matching row (~100 ms a query at 100k chunks): BM25 is now an in-memory
    # sparse matrix built from `chunks.text`, and the FTS copy of the text goes.
    db.execute("DROP TABLE chunks_fts")


MIGRATIONS = [_v1, _v2]


@dataclass
class Hit:
    chunk_id: int
    source: str
    title: str
    position: int
    start: int
    end: int
    text: str
    metadata: dict
    score: float  # the ranking score of the mode searched (cosine, BM25, or fused reciprocal rank)
    dense: float | None = None  # cosine similarity to the query
    bm25: float | None = None  # BM25 (higher is better)
    dense_rank: int | None = None
    bm25_rank: int | None = None

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)

    def to_dict(self) -> dict:
        return {"chunk_id": self.chunk_id, "source": self.source, "title": self.title, "position": self.position,
                "span": [self.start, self.end], "score": round(self.score, 6),
                "dense": None if self.dense is None else round(self.dense, 6),
                "bm25": None if self.bm25 is None else round(self.bm25, 6),
                "dense_rank": self.dense_rank, "bm25_rank": self.bm25_rank, "metadata": self.metadata,
                "text": self.text}


@dataclass
class FileRecord:
    path: str
    sha256: str
    title: str
    bytes: int
    chunks: int
    added_at: float


@dataclass
class NewChunk:
    text: str
    title: str
    position: int
    start: int
    end: int
    metadata: dict = field(default_factory=dict)


def check_search(k: int, mode: str) -> None:
    if mode not in MODES:
        raise InvalidParameter(f"unknown search mode {mode!r}", f"use one of: {', '.join(MODES)}")
    if k < 1:
        raise InvalidParameter(f"k must be at least 1, not {k}", "ask for --k 5, say")


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create {self.path.parent} for the knowledge base ({exc.strerror})",
                             "pass a --kb path in a folder you can write") from None
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            migrate(self.db, MIGRATIONS, label=str(self.path))
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self.path} is not a knowledge base ({exc})",
                             "move it away, or pass another --kb path") from exc
        self._lock = threading.RLock()
        self._matrix: np.ndarray | None = None  # (chunks, dims) float32, rows normalised
        self._ids: np.ndarray | None = None  # (chunks,) chunk ids, row order of the matrix
        self._loaded_version = -1
        self._lexical: LexicalIndex | None = None
        self._half: torch.Tensor | None = None

    def close(self) -> None:
        self.db.close()

    # --- metadata ---
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                        "excluded.value", (key, value))

    def _version(self) -> int:
        return int(self.get_meta("revision") or 0)

    # --- files ---
    def file(self, path: str) -> FileRecord | None:
        row = self.db.execute("SELECT path, sha256, title, bytes, chunks, added_at FROM files WHERE path = ?",
                              (path,)).fetchone()
        return FileRecord(*row) if row else None

    def files(self) -> list[FileRecord]:
        return [FileRecord(*r) for r in self.db.execute(
            "SELECT path, sha256, title, bytes, chunks, added_at FROM files ORDER BY path")]

    def put_file(self, path: str, sha256: str, title: str, size: int, chunks: Sequence[NewChunk],
                 vectors: np.ndarray) -> None:
        """Replace `path`'s chunks with these, in one transaction: a crash keeps the old version or the new."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self._delete(path)
                cursor = self.db.execute(
                    "INSERT INTO files(path, sha256, title, bytes, chunks, added_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (path, sha256, title, size, len(chunks), time.time()))
                file_id = cursor.lastrowid
                for chunk, vector in zip(chunks, vectors, strict=True):
                    self.db.execute(
                        "INSERT INTO chunks(file_id, position, title, text, start, end, metadata, vector) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (file_id, chunk.position, chunk.title, chunk.text, chunk.start, chunk.end,
                         json.dumps(chunk.metadata, ensure_ascii=False), vector.tobytes()))
                self.set_meta("revision", str(self._version() + 1))
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def remove(self, path: str) -> int:
        """Remove a file's chunks; returns how many there were."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                removed = self._delete(path)
                self.set_meta("revision", str(self._version() + 1))
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        return removed

    def _delete(self, path: str) -> int:
        row = self.db.execute("SELECT id FROM files WHERE path = ?", (path,)).fetchone()
        if row is None:
            return 0
        removed = self.db.execute("DELETE FROM chunks WHERE file_id = ?", (row[0],)).rowcount
        self.db.execute("DELETE FROM files WHERE id = ?", (row[0],))
        return removed

    def chunk_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def chunks_of(self, path: str) -> list[Hit]:
        rows = self.db.execute(
            "SELECT c.id, f.path, c.title, c.position, c.start, c.end, c.text, c.metadata FROM chunks c "
            "JOIN files f ON f.id = c.file_id WHERE f.path = ? ORDER BY c.position", (path,)).fetchall()
        return [Hit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), 0.0) for r in rows]

    # --- search ---
    def _load(self) -> None:
        """The in-memory indexes, rebuilt when another add or remove (any process) changed the file."""
        with self._lock:
            version = self._version()
            if self._matrix is not None and version == self._loaded_version:
                return
            rows = self.db.execute("SELECT id, vector, title || ' ' || text FROM chunks ORDER BY id").fetchall()
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            dims = len(rows[0][1]) // 4 if rows else 0
            self._matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dims)
            self._half = torch.from_numpy(self._matrix.astype(np.float16))  # (chunks, dims): the coarse pass
            self._lexical = LexicalIndex(r[2] for r in rows)
            self._ids, self._loaded_version = ids, version

    def _dense_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        self._load()
        assert self._matrix is not None and self._ids is not None
        return self._matrix, self._ids

    def _top(self, scores: np.ndarray, ids: np.ndarray, k: int, allowed: set[int] | None) -> list[tuple[int, float]]:
        if allowed is not None:
            keep = np.isin(ids, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
            scores = np.where(keep, scores, -np.inf)
        k = min(k, len(ids))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(ids[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]

    def _allowed(self, filters: dict[str, str] | None) -> set[int] | None:
        """Chunk ids passing the metadata filters: `source` is a glob on the path, other keys compare a
        metadata field (as text)."""
        if not filters:
            return None
        where, args = [], []
        for key, value in filters.items():
            if key == "source":
                where.append("f.path GLOB ?")
            elif key == "title":
                where.append("c.title = ?")
            else:
                if not re.fullmatch(r"\w+", key):
                    raise InvalidParameter(f"cannot filter on {key!r}", "use a metadata field name (letters, _)")
                where.append(f"CAST(json_extract(c.metadata, '$.{key}') AS TEXT) = ?")
            args.append(str(value))
        rows = self.db.execute("SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE "
                               + " AND ".join(where), args)
        return {r[0] for r in rows}

    def dense(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[tuple[int, float]]:
        matrix, ids = self._dense_matrix()
        if not len(ids):
            return []
        query = np.asarray(query, dtype=np.float32)
        # Two passes, exact in the end: float16 scores of every row (torch's half matrix-vector product
        # reads half the bytes and runs ~2.5x faster than numpy's float32 one here), then the best
        # RESCORE candidates scored again in float32. Half precision errs by ~1e-3 on a cosine, far less
        # than the gap between the k-th and the RESCORE-th candidate.
        assert self._half is not None
        coarse = (self._half @ torch.from_numpy(query).to(torch.float16)).float().numpy()  # (chunks,)
        candidates = self._top(coarse, ids, max(k, RESCORE), allowed)
        rows = np.searchsorted(ids, np.array([c for c, _ in candidates], dtype=np.int64))  # ids are sorted
        if not len(rows):
            return []
        exact = matrix[rows] @ query  # (candidates,) float32 cosines
        order = np.argsort(-exact)[:k]
        return [(int(ids[rows[i]]), float(exact[i])) for i in order]

    def dense_scores(self, query: np.ndarray, chunk_ids: Iterable[int]) -> dict[int, float]:
        matrix, ids = self._dense_matrix()
        wanted = list(chunk_ids)
        rows = np.searchsorted(ids, wanted)  # ids are sorted (ORDER BY id)
        return {c: float(matrix[r] @ query) for c, r in zip(wanted, rows, strict=True)}

    def bm25(self, text: str, k: int, allowed: set[int] | None = None) -> list[tuple[int, float]]:
        _, ids = self._dense_matrix()
        assert self._lexical is not None
        if not len(ids):
            return []
        scores = self._lexical.scores(text)  # (chunks,)
        scores = np.where(scores > 0, scores, -np.inf)  # a chunk with none of the words is no match
        return self._top(scores, ids, k, allowed)

    def hydrate(self, scored: Sequence[tuple[int, float]]) -> dict[int, Hit]:
        if not scored:
            return {}
        ids = [c for c, _ in scored]
        rows = self.db.execute(
            "SELECT c.id, f.path, c.title, c.position, c.start, c.end, c.text, c.metadata FROM chunks c JOIN files f "
            f"ON f.id = c.file_id WHERE c.id IN ({','.join('?' * len(ids))})", ids).fetchall()
        return {r[0]: Hit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), 0.0) for r in rows}

    def search(self, text: str, vector: np.ndarray | None, k: int = 5, mode: Mode = "hybrid",
               filters: dict[str, str] | None = None) -> list[Hit]:
        check_search(k, mode)
        with self._lock:  # one snapshot of the indexes for both retrievers (another thread may reload them)
            return self._search(text, vector, k, mode, filters)

    def _search(self, text: str, vector: np.ndarray | None, k: int, mode: Mode,
                filters: dict[str, str] | None) -> list[Hit]:
        allowed = self._allowed(filters)
        depth = max(k, CANDIDATES)
        dense = self.dense(vector, depth, allowed) if mode != "bm25" and vector is not None else []
        lexical = self.bm25(text, depth, allowed) if mode != "dense" else []
        dense_rank = {c: r for r, (c, _) in enumerate(dense, 1)}
        bm25_rank = {c: r for r, (c, _) in enumerate(lexical, 1)}
        dense_score, bm25_score = dict(dense), dict(lexical)
        if mode == "dense":
            ranked = dense[:k]
        elif mode == "bm25":
            ranked = lexical[:k]
        else:
            fused: dict[int, float] = {}
            for ranks in (dense_rank, bm25_rank):
                for c, r in ranks.items():
                    fused[c] = fused.get(c, 0.0) + 1.0 / (RRF_K + r)
            ranked = sorted(fused.items(), key=lambda item: -item[1])[:k]
        hits = self.hydrate(ranked)
        if vector is not None:  # every hit carries its cosine: `ask` calibrates its abstention on it
            missing = [c for c, _ in ranked if c not in dense_score]
            dense_score.update(self.dense_scores(vector, missing))
        out = []
        for c, score in ranked:
            hit = hits.get(c)
            if hit is None:  # removed by another process since the indexes were loaded
                continue
            hit.score, hit.dense, hit.bm25 = score, dense_score.get(c), bm25_score.get(c)
            hit.dense_rank, hit.bm25_rank = dense_rank.get(c), bm25_rank.get(c)
            out.append(hit)
        return out

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
