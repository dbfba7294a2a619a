"""Shared fixtures: the real bundled model, loaded once per test session."""

from __future__ import annotations

import pytest

from llm_playground.model import LanguageModel, load_model
from llm_playground.model.convert import ensure_converted
from llm_playground.model.registry import resolve_source
from llm_playground.tokenizer.hf import HFTokenizer


@pytest.fixture(scope="session")
def smollm2_dir():
    """The converted directory of the bundled model (converted once, ~25 s on a fresh machine)."""
    _, path = resolve_source("smollm2")
    return ensure_converted(path, label="smollm2")


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_dir) -> HFTokenizer:
    return HFTokenizer(smollm2_dir)


@pytest.fixture(scope="session")
def smollm2() -> LanguageModel:
    return load_model("smollm2", threads=1)


@pytest.fixture(scope="session")
def minilm():
    """The bundled sentence embedder (all-MiniLM-L6-v2), loaded once per test session."""
    from llm_playground.knowledge.embedder import load_embedder

    return load_embedder()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh workspace for the web app's AppTest runs (the app reads LLMP_HOME), with 1 torch thread."""
    monkeypatch.setenv("LLMP_HOME", str(tmp_path))
    monkeypatch.setenv("LLMP_THREADS", "1")
    return tmp_path
