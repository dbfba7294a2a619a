"""Files → sections of plain text: .txt .md .html .pdf .jsonl.

A reader returns the file's sections (a PDF page, a JSON Lines record, or the whole text), each with a
title and metadata; chunk spans are character offsets into a section's text. A file that cannot be
read (corrupt PDF, binary, empty) raises `Unreadable`, which `add` reports as a warning and skips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from llm_playground.data.sources import read_text, text_records

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl")


class Unreadable(Exception):  # noqa: N818 (a reason to skip a file, not an error of the program)
    """Why a file was skipped."""


@dataclass
class Section:
    text: str
    title: str
    metadata: dict = field(default_factory=dict)


def read_file(path: Path) -> list[Section]:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise Unreadable(f"unsupported file type {suffix or '(none)'} (supported: {', '.join(SUFFIXES)})")
    if suffix == ".pdf":
        sections = _read_pdf(path)
    else:
        text = _read_text(path)
        if suffix == ".jsonl":
            sections = _read_jsonl(text, path)
        elif suffix in (".html", ".htm"):
            sections = [_read_html(text, path)]
        else:
            sections = [Section(text, _markdown_title(text) if suffix != ".txt" else _first_line(text, path))]
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise Unreadable("no text in it (empty file)")
    return sections


def _read_text(path: Path) -> str:
    try:
        return read_text(path)
    except ValueError as exc:
        raise Unreadable(str(exc)) from None


def _first_line(text: str, path: Path) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:80]
    return path.stem


def _markdown_title(text: str) -> str:
    match = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else _first_line(text, Path(""))


def _read_jsonl(text: str, path: Path) -> list[Section]:
    sections = []
    for number, record in text_records(text):
        if isinstance(record, str):
            raise Unreadable(f"line {number}: {record}")
        metadata = {k: v for k, v in record.items() if k != "text"}
        metadata["line"] = number
        title = str(record.get("title") or f"{path.name}:{number}")
        sections.append(Section(record["text"], title, metadata))
    return sections


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page: scripts, styles and the head dropped; blocks become paragraphs."""

    _SKIP = {"script", "style", "noscript", "template", "head", "svg"}
    _BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "h1", "h2", "h3", "h4",
              "h5", "h6", "pre", "blockquote", "header", "footer", "dd", "dt"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title, self.h1 = "", ""
        self._skipping, self._in_title, self._in_h1 = 0, False, False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skipping += 1
        if tag == "h1":
            self._in_h1 = True
        if tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        if tag == "h1":
            self._in_h1 = False
        if tag in self._BLOCK:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skipping:
            self.parts.append(data)
            if self._in_h1:
                self.h1 += data


def _read_html(text: str, path: Path) -> Section:
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    body = re.sub(r"[ \t\r\f\v]+", " ", "".join(parser.parts))
    body = re.sub(r"\s*\n\s*\n\s*", "\n\n", body).strip()
    return Section(body, (parser.title or parser.h1).strip() or path.stem)


def _read_pdf(path: Path) -> list[Section]:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its warnings about sloppy PDFs would flood the CLI
    try:
        reader = PdfReader(path)
        title = (reader.metadata.title if reader.metadata else None) or path.stem
        pages = [Section(page.extract_text() or "", str(title), {"page": number})
                 for number, page in enumerate(reader.pages, 1)]
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Unreadable(f"cannot read the PDF ({type(exc).__name__}: {exc})") from exc
    if not any(p.text.strip() for p in pages):
        raise Unreadable("the PDF has no extractable text (scanned images?)")
    return pages
