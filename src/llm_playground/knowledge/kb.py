"""The knowledge base a user works with: add files, remove them, list, search.

`open_kb(workspace)` is the library entry point (the agent's `kb_search` tool, the API and the web app
use it); `llmp kb` is a thin front end over it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llm_playground.errors import InputError
from llm_playground.knowledge.chunking import DEFAULT_CHUNK_TOKENS, DEFAULT_OVERLAP, check_chunking, chunk_sections
from llm_playground.knowledge.embedder import MINILM, Embedder, load_embedder
from llm_playground.knowledge.readers import SUFFIXES, Unreadable, read_file
from llm_playground.knowledge.store import Hit, Mode, NewChunk, Store, check_search
from llm_playground.workspace import Workspace

EMBED_BATCH = 32


@dataclass
class AddReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    chunks: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {"added": self.added, "replaced": self.replaced, "unchanged": self.unchanged,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped], "chunks": self.chunks,
                "seconds": round(self.seconds, 3), "chunks_per_s": round(self.chunks_per_s, 2)}


# progress(event, path, done, total): event is "file" (a file starts; total = its chunks) or "chunks"
Progress = Callable[[str, str, int, int], None]


class KnowledgeBase:
    def __init__(self, path: Path, root: Path | None = None, embedder: Embedder | None = None) -> None:
        self.store = Store(path)
        self.root = (root or Path(path).parent).resolve()
        self._embedder = embedder

    # --- settings, fixed at the first add ---
    @property
    def embedder_name(self) -> str:
        return self.store.get_meta("embedder") or (self._embedder.name if self._embedder else MINILM)

    @property
    def chunk_tokens(self) -> int:
        return int(self.store.get_meta("chunk_tokens") or DEFAULT_CHUNK_TOKENS)

    @property
    def overlap(self) -> int:
        return int(self.store.get_meta("overlap") or DEFAULT_OVERLAP)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.embedder_name)
        elif self.store.get_meta("embedder") not in (None, self._embedder.name):
            raise InputError(f"this knowledge base was built with {self.store.get_meta('embedder')}, "
                             f"not {self._embedder.name}", "use the same embedder, or start a new knowledge base")
        return self._embedder

    def configure(self, chunk_tokens: int | None = None, overlap: int | None = None) -> None:
        """Set chunking before the first add (the chunks of one base are all made the same way)."""
        if self.store.chunk_count() and (chunk_tokens not in (None, self.chunk_tokens)
                                         or overlap not in (None, self.overlap)):
            raise InputError("the chunk size of a knowledge base with files in it cannot change",
                             "remove its files first, or use another knowledge base file")
        # checked before anything is stored: a bad value kept in the base would fail every later add
        check_chunking(self.chunk_tokens if chunk_tokens is None else chunk_tokens,
                       self.overlap if overlap is None else overlap)
        if chunk_tokens is not None:
            self.store.set_meta("chunk_tokens", str(chunk_tokens))
        if overlap is not None:
            self.store.set_meta("overlap", str(overlap))

    # --- paths ---
    def key(self, path: Path) -> str:
        """How a file is named in the base: relative to the workspace when inside it."""
        resolved = Path(path).resolve()
        try:
            return str(resolved.relative_to(self.root))
        except ValueError:
            return str(resolved)

    def expand(self, paths: Iterable[Path]) -> list[Path]:
        """Files to add: each file named, and every supported file under each folder (hidden ones left out)."""
        paths = [Path(p) for p in paths]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise InputError(f"no such file or folder: {', '.join(missing)}", "check the path")
        files: list[Path] = []
        for path in paths:
            if path.is_dir():
                files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                                    and not any(part.startswith(".") for part in p.relative_to(path).parts)))
            else:
                files.append(path)
        return list(dict.fromkeys(files))

    # --- add / remove ---
    def add(self, paths: Sequence[Path], progress: Progress | None = None) -> AddReport:
        files = self.expand(paths)
        embedder = self.embedder  # loaded before the clock starts: chunks/s measures ingestion only
        report, started, cpu = AddReport(), time.perf_counter(), time.process_time()
        if self.store.get_meta("embedder") is None:
            self.store.set_meta("embedder", embedder.name)
            self.store.set_meta("dimensions", str(embedder.dimensions))
        for path in files:
            key = self.key(path)
            try:
                data = path.read_bytes()
            except OSError as exc:
                report.skipped.append((key, f"cannot read it ({exc.strerror})"))
                continue
            digest = hashlib.sha256(data).hexdigest()
            known = self.store.file(key)
            if known is not None and known.sha256 == digest:
                report.unchanged.append(key)
                continue
            try:
                sections = read_file(path)
            except Unreadable as exc:
                report.skipped.append((key, str(exc)))
                continue
            chunks = chunk_sections(sections, embedder, self.chunk_tokens, self.overlap)
            if progress:
                progress("file", key, 0, len(chunks))
            vectors = []
            for start in range(0, len(chunks), EMBED_BATCH):
                vectors.append(embedder.embed([c.text for c in chunks[start:start + EMBED_BATCH]]))
                if progress:
                    progress("chunks", key, min(start + EMBED_BATCH, len(chunks)), len(chunks))
            matrix = np.concatenate(vectors) if vectors else np.zeros((0, embedder.dimensions), np.float32)
            self.store.put_file(key, digest, sections[0].title, len(data),
                                [NewChunk(c.text, c.title, c.position, c.start, c.end, c.metadata) for c in chunks],
                                matrix)
            (report.replaced if known else report.added).append(key)
            report.chunks += len(chunks)
        report.seconds, report.cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        return report

    def remove(self, path: Path | str) -> list[str]:
        """Remove a file, or every file under a folder; returns the names removed."""
        key = self.key(Path(path))
        names = [f.path for f in self.store.files() if f.path == key or f.path.startswith(key.rstrip("/") + "/")]
        if not names:
            raise InputError(f"{key} is not in the knowledge base", "see `llmp kb list` for what is")
        for name in names:
            self.store.remove(name)
        return names

    # --- reading ---
    def files(self):  # noqa: ANN201 (list[FileRecord])
        return self.store.files()

    def chunks_of(self, path: str) -> list[Hit]:
        return self.store.chunks_of(path)

    def status(self) -> dict:
        files = self.store.files()
        return {"path": str(self.store.path), "files": len(files), "chunks": self.store.chunk_count(),
                "embedder": self.embedder_name, "dimensions": int(self.store.get_meta("dimensions") or 0),
                "chunk_tokens": self.chunk_tokens, "overlap": self.overlap, "bytes_on_disk": self.store.size_bytes()}

    def search(self, query: str, k: int = 5, mode: Mode = "hybrid", filters: dict[str, str] | None = None) -> list[Hit]:
        """The `k` best chunks for `query`; each hit carries the scores of both retrievers where it has them."""
        if not query or not query.strip():
            raise InputError("the search query is empty", "give some words to search for")
        check_search(k, mode)  # an empty base too: the same options are refused whatever it holds
        if self.store.chunk_count() == 0:
            return []
        vector = self.embedder.embed([query])[0] if mode != "bm25" else None
        return self.store.search(query, vector, k=k, mode=mode, filters=filters)

    def close(self) -> None:
        self.store.close()


def open_kb(workspace: Workspace | Path | str | None = None, embedder: Embedder | None = None) -> KnowledgeBase:
    """The knowledge base of a workspace (default: the current one), or the store file at a path."""
    if workspace is None:
        workspace = Workspace.current()
    if isinstance(workspace, Workspace):
        return KnowledgeBase(workspace.kb_db, workspace.root, embedder)
    path = Path(workspace)
    if path.is_dir():
        return KnowledgeBase(Workspace(path.resolve()).kb_db, path, embedder)
    return KnowledgeBase(path, None, embedder)
