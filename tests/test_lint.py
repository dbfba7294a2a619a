"""The code stays ruff- and mypy-clean: CI fails on a lint or type error like on any other test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    found = shutil.which(name) or (Path(sys.executable).parent / name)
    if not Path(found).exists():
        pytest.skip(f"{name} is not installed (it comes with the test extras: pip install -e '.[test]')")
    return str(found)


def test_ruff_is_clean():
    run = subprocess.run([_tool("ruff"), "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.slow
def test_mypy_is_clean():
    """`mypy src` as `make lint` runs it (settings in pyproject.toml). Its cache (.mypy_cache, git-ignored) makes
    a second run take seconds; the first on a fresh clone takes about a minute of CPU."""
    run = subprocess.run([_tool("mypy"), "src"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
