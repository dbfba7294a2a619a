"""Output paths checked before any work: a path that cannot be written is one line and exit 2, not
"unexpected error" after minutes of work."""

from __future__ import annotations

import os
from pathlib import Path

from llm_playground.errors import InvalidParameter


def check_output(path: Path | None, option: str, *, directory: bool = False) -> Path | None:
    """`path` if it can be written (as a file, or a folder with `directory`), else an InvalidParameter naming
    `option`. Missing parent folders are fine (they are created), a regular file where a folder must be is not."""
    if path is None:
        return None
    path = Path(path)
    fix = f"give {option} a path in a folder you can write to"
    if path.exists():
        if directory and not path.is_dir():
            raise InvalidParameter(f"cannot write {option} {path}: it is a file, not a folder", fix)
        if not directory and path.is_dir():
            raise InvalidParameter(f"cannot write {option} {path}: it is a folder", f"give {option} a file name")
        if not os.access(path, os.W_OK):
            raise InvalidParameter(f"cannot write {option} {path}: permission denied", fix)
        return path
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InvalidParameter(f"cannot write {option} {path}: {parent} is a file, not a folder", fix)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidParameter(f"cannot write {option} {path}: the folder {parent} is not writable", fix)
    return path
