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
from typing import IO, Literal

import platformdirs

CheckpointKind = Literal["best", "last"]
CHECKPOINT_KINDS: tuple[CheckpointKind, ...] = ("best", "last")  # the order a run is used in: best, else last
# A checkpoint is complete once both are written (model/gpt_model.py writes them).
CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS = "config.json", "model.safetensors"


@dataclass(frozen=True)
class RunDir:
    """One training run's folder, `runs/NAME` (or any `--out`): the one place its files are named."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, kind: CheckpointKind) -> Path:
        """`checkpoints/best` (lowest validation loss) or `checkpoints/last` (the latest, what resumes)."""
        return self.checkpoints_dir / kind

    @property
    def last(self) -> Path:
        return self.checkpoint("last")

    @property
    def best(self) -> Path:
        return self.checkpoint("best")

    @property
    def metrics(self) -> Path:
        """One JSON object a line (train/metrics.py)."""
        return self.path / "metrics.jsonl"

    @property
    def config(self) -> Path:
        """The training settings the run started with (what --resume continues)."""
        return self.path / "train_config.yaml"

    @property
    def loss_chart(self) -> Path:
        """The loss curve, `loss.png` (`loss.html` beside it when PNG export is unavailable)."""
        return self.path / "loss.png"

    @property
    def tokenizer(self) -> Path:
        """The run's copy of the SentencePiece tokenizer it was trained with."""
        return self.path / "tokenizer.model"

    @property
    def log(self) -> Path:
        """What a background training (the web app's) writes."""
        return self.path / "train.log"

    @property
    def pid_file(self) -> Path:
        return self.path / "train.pid"

    def is_run(self) -> bool:
        """A folder with checkpoints (complete or not yet): what `--model` accepts as a run."""
        return self.checkpoints_dir.is_dir()

    def complete_checkpoints(self) -> list[tuple[CheckpointKind, Path]]:
        """The checkpoints with every file written, in the order a run is used: best, then last."""
        return [(kind, self.checkpoint(kind)) for kind in CHECKPOINT_KINDS
                if all((self.checkpoint(kind) / name).is_file() for name in (CHECKPOINT_CONFIG, CHECKPOINT_WEIGHTS))]

    def usable_checkpoint(self) -> Path | None:
        """The checkpoint the run is used through: `best`, else `last`; None before the first is saved."""
        complete = self.complete_checkpoints()
        return complete[0][1] if complete else None


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

    def run(self, name: str) -> RunDir:
        return RunDir(self.runs_dir / name)

    def run_dir(self, name: str) -> Path:
        return self.run(name).path

    def runs(self) -> list[RunDir]:
        """Every run folder under runs/, by name (hidden ones, such as an atomic write's temp, left out)."""
        if not self.runs_dir.is_dir():
            return []
        return [RunDir(p) for p in sorted(self.runs_dir.iterdir()) if p.is_dir() and not p.name.startswith(".")]

    @property
    def agent_db(self) -> Path:
        """Agent runs and their steps (SQLite), read by `llmp runs` and the web app's Agent page."""
        return self.root / "agent.sqlite3"

    @property
    def kb_db(self) -> Path:
        """The knowledge base (`llmp kb`): files, chunks, vectors and the full-text index (SQLite)."""
        return self.root / "knowledge.sqlite3"

    @property
    def knowledge_dir(self) -> Path:
        """Files uploaded to the knowledge base from the web app (kept, so `llmp kb add` can re-read them)."""
        return self.root / "data" / "knowledge"

    @property
    def conversations_db(self) -> Path:
        """The web app's chat history (SQLite)."""
        return self.root / "conversations.sqlite3"

    @property
    def prices_path(self) -> Path:
        """The user's price table for providers' models (JSON); the bundled list prices when absent."""
        return self.root / "prices.json"


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
