"""The docs cannot drift: the CLI reference is `--help` itself, the README's Python runs, links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import llm_playground

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _generated_part(page: str) -> str:
    start = page.index("]]] -->\n") + len("]]] -->\n")
    return page[start:page.index("<!-- [[[end]]] -->")]


def test_cli_reference_matches_help():
    """docs/cli-reference.md is what cog would write now (the same check as `make lint`'s `cog --check`)."""
    from llm_playground.cli.reference import markdown

    page = (DOCS / "cli-reference.md").read_text(encoding="utf-8")
    assert _generated_part(page) == markdown(), (
        "docs/cli-reference.md is stale: a command or its help changed. Regenerate it with `make docs`.")


def test_cli_reference_lists_every_command():
    from llm_playground.cli.main import _register, app

    _register()
    page = (DOCS / "cli-reference.md").read_text(encoding="utf-8")
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    names += [g.name for g in app.registered_groups]
    assert names and all(f"## llmp {name}\n" in page for name in names)


def _python_blocks(path: Path, marker: str) -> list[str]:
    return re.findall(rf"^```{marker}\n(.*?)^```", path.read_text(encoding="utf-8"), flags=re.M | re.S)


def _runnable() -> list[tuple[str, str]]:
    """Every ```python block of the README, and the ```python runnable blocks of docs/*.md."""
    blocks = [(f"README.md#{i}", code) for i, code in enumerate(_python_blocks(README, "python"))]
    for page in sorted(DOCS.glob("*.md")):
        blocks += [(f"docs/{page.name}#{i}", code) for i, code in enumerate(_python_blocks(page, "python runnable"))]
    return blocks


@pytest.mark.slow
@pytest.mark.parametrize(("where", "code"), _runnable(), ids=[w for w, _ in _runnable()])
def test_python_examples_run(where, code, smollm2, monkeypatch, tmp_path, capsys):
    """The examples run as written; `load_model("smollm2")` hands them the session's model instead of a
    second copy (loading is tested in tests/test_model.py)."""
    real = llm_playground.load_model
    monkeypatch.setattr(llm_playground, "load_model",
                        lambda name, **kw: smollm2 if name == "smollm2" and not kw else real(name, **kw))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, where, "exec"), {"__name__": "__docs__"})
    assert capsys.readouterr().out.strip(), f"{where} printed nothing"


def test_readme_is_an_entry_page_with_links_inside_the_repository():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300, "the README is the entry page: move details into docs/<area>.md"
    for page in [README, *sorted(DOCS.glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://")):
                assert page != README, f"the README links outside the repository: {target}"
                continue  # a docs page may cite a library's site
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
            assert resolved.exists(), f"{page.name} links to a missing file: {target}"
    for page in sorted(DOCS.glob("*.md")):
        assert f"(docs/{page.name})" in text, f"the README's More section does not list docs/{page.name}"


def test_facade_names_resolve_without_importing_torch_up_front():
    assert sorted(llm_playground.__all__) == sorted(["__version__", *llm_playground._FACADE])
    for name in llm_playground._FACADE:
        assert getattr(llm_playground, name) is not None
    from llm_playground.generate.loop import generate

    # `generate` is the subpackage, callable as the loop's generate, whatever was imported first
    assert llm_playground.generate.__wrapped__ is generate and callable(llm_playground.generate)
    code = "import sys, llm_playground; assert 'torch' not in sys.modules, 'import llm_playground loaded torch'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
