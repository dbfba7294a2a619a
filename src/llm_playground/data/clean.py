"""Cleaning: one normal form for every document, then drop the empty, the short and the duplicates.

A document never contains a blank line after cleaning: in corpus.txt a blank line is what separates
documents, so `prepare` can put an end-of-sequence token exactly where one document ends.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

_SPACES = re.compile(r"[^\S\n]+")  # any whitespace but the newline: tabs, NBSP, ideographic spaces...
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Document:
    text: str
    source: str  # "shakespeare", "files", "wikipedia"
    name: str  # the play, file or page it came from


@dataclass
class CleaningReport:
    kept: int = 0
    empty: int = 0
    short: int = 0
    duplicate: int = 0
    names_removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"kept": self.kept, "empty": self.empty, "short": self.short, "duplicate": self.duplicate}


def normalize_whitespace(text: str) -> str:
    """NFC, one kind of line ending and of space, no trailing spaces and no blank lines."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def clean_documents(documents: Iterable[Document], min_chars: int = 1) -> tuple[list[Document], CleaningReport]:
    """Normalised documents in their original order; the first of identical texts wins."""
    report, seen, kept = CleaningReport(), set(), []
    for document in documents:
        text = normalize_whitespace(document.text)
        if not text:
            report.empty += 1
        elif len(text) < min_chars:
            report.short += 1
        elif (digest := hashlib.sha256(text.encode()).digest()) in seen:
            report.duplicate += 1
        else:
            seen.add(digest)
            kept.append(Document(text, document.source, document.name))
            continue
        report.names_removed.append(document.name)
    report.kept = len(kept)
    return kept, report
