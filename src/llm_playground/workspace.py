"""Every path the project uses, and atomic writes.

The workspace is the folder a user works in (the current directory, or `LLMP_HOME`); the cache
holds converted pretrained models (`LLMP_CACHE_DIR`, else the user cache dir). Nothing else in the
project builds paths by hand.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import platformdirs


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def current(cls) -> Workspace:
        return cls(Path(os.environ.get("LLMP_HOME", os.getcwd())).resolve())

    @property
    def raw_dir(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def processed_dir(self) -> Path:
        return self.root / "data" / "processed"

    @property
    def input_dir(self) -> Path:
        return self.root / "data" / "input"

    @property
    def output_dir(self) -> Path:
        return self.root / "data" / "output"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    # The build flow's artefacts (DESIGN.md "The flow"): one name for each, used by every stage.
    @property
    def corpus_path(self) -> Path:
        return self.raw_dir / "corpus.txt"

    @property
    def manifest_path(self) -> Path:
        return self.raw_dir / "manifest.json"

    @property
    def tokenizer_path(self) -> Path:
        """The SentencePiece model; `tokenizer.vocab` sits beside it."""
        return self.models_dir / "tokenizer.model"

    @property
    def train_bin(self) -> Path:
        return self.processed_dir / "train.bin"

    @property
    def val_bin(self) -> Path:
        return self.processed_dir / "val.bin"

    @property
    def meta_path(self) -> Path:
        return self.processed_dir / "meta.json"

    @property
    def logs_db(self) -> Path:
        """The API server's request log (SQLite), read by `llmp logs`."""
        return self.root / "logs.db"

    def relative(self, path: Path) -> str:
        """A path as messages show it: relative to the workspace when inside it."""
        try:
            return str(Path(path).resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def wikipedia_dir(self, lang: str) -> Path:
        """Pages downloaded from Wikipedia, one file each, so a second `collect` resumes."""
        return self.raw_dir / "wikipedia" / lang

    def run_dir(self, name: str) -> Path:
        return self.runs_dir / name

    @property
    def agent_db(self) -> Path:
        """Agent runs and their steps (SQLite), read by `llmp runs` and the web app's Agent page."""
        return self.root / "agent.sqlite3"

    @property
    def kb_db(self) -> Path:
        """The knowledge base (`llmp kb`): files, chunks, vectors and the full-text index (SQLite)."""
        return self.root / "knowledge.sqlite3"

    @property
    def conversations_db(self) -> Path:
        """The web app's chat history (SQLite)."""
        return self.root / "conversations.sqlite3"


def cache_dir() -> Path:
    """Where converted models live; created on first use."""
    path = Path(os.environ.get("LLMP_CACHE_DIR") or platformdirs.user_cache_dir("llm-playground"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Write to a temp file beside `path`, then `os.replace` it: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; the result should look like any other file
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# Read once at import: os.umask can only be read by setting it, which is not safe once threads run.
_UMASK = _read_umask()


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Build a directory under a temp name and rename it into place when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp creates 0700; the result should look like any other directory
    try:
        yield tmp
        if path.exists():
            import shutil

            # The old directory is moved aside, not deleted, before the new one takes its name: a crash
            # between the two renames leaves it recoverable instead of lost.
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
