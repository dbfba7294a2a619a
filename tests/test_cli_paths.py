"""Output paths are checked before any work (issue 12.5): one line naming the option, exit status 2."""

from __future__ import annotations

import os

import pytest

from llm_playground.cli.paths import check_output
from llm_playground.errors import InvalidParameter


def test_writable_paths_pass_and_missing_folders_are_fine(tmp_path):
    assert check_output(None, "--out") is None
    assert check_output(tmp_path / "new" / "deeper" / "x.json", "--output") == tmp_path / "new" / "deeper" / "x.json"
    assert check_output(tmp_path, "--out", directory=True) == tmp_path


def test_unwritable_paths_are_refused_naming_the_option(tmp_path):
    (tmp_path / "afile").write_text("x")
    cases = [(tmp_path / "afile" / "t.jsonl", {}, "--trace", "is a file, not a folder"),
             (tmp_path / "afile" / "a" / "b", {"directory": True}, "--out", "is a file, not a folder"),
             (tmp_path / "afile", {"directory": True}, "--out", "it is a file"),
             (tmp_path, {}, "--output", "it is a folder")]
    for path, kwargs, option, message in cases:
        with pytest.raises(InvalidParameter) as caught:
            check_output(path, option, **kwargs)
        assert option in caught.value.message and message in caught.value.message
        assert caught.value.exit_code == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InvalidParameter, match="not writable"):
            check_output(folder / "x.json", "--output")
    finally:
        folder.chmod(0o700)
