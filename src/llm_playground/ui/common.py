"""What every page shares: the model picker, the one cached model per process, errors shown with their fix."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import streamlit as st

from llm_playground.conversations import ConversationStore
from llm_playground.errors import PlaygroundError
from llm_playground.model import DEFAULT_MODEL, list_models, load_model
from llm_playground.serve.providers import PROVIDERS, Prices, load_prices
from llm_playground.ui.shared import SharedModel
from llm_playground.workspace import Workspace

DTYPES = ("float32", "float16", "bfloat16", "int8", "int4")
OTHER = "other (a path)…"
PROVIDER = "an OpenAI-compatible provider…"
OTHER_URL = "another URL"
# Widget values that must outlive a page switch: Streamlit forgets a widget's state when a run does not
# draw it, so these are copied to themselves at the top of every run (see `keep_state`).
KEPT: tuple[str, ...] = (
        "model_name", "model_path", "provider_preset", "provider_url", "provider_model", "provider_key_env",
        "dtype", "preset", "temperature", "top_k", "top_p", "min_p",
        "cmp_model_a", "cmp_model_b", "cmp_temperature_a", "cmp_temperature_b",
        "repetition_penalty", "frequency_penalty", "presence_penalty", "max_new_tokens", "seed", "system_prompt",
        "fn_definitions", "fn_prompts", "fn_tool_choice", "fn_parallel", "fn_allow_none", "fn_execute")
KEPT += ("agent_task", "agent_tools", "agent_kb", "agent_max_steps", "agent_answer")  # the Agent page
_LOADED: dict[tuple[str, str], dict[str, Any]] = {}


def keep_state() -> None:
    for key in KEPT:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


@st.cache_resource(show_spinner=False, max_entries=3)
def _load(spec: str, dtype: str) -> SharedModel:
    model = SharedModel(load_model(spec, dtype=dtype))
    _LOADED[(spec, dtype)] = {"spec": spec, **vars(model.info)}
    return model


def loaded_models() -> list[dict[str, Any]]:
    """Models this process holds (shared by every browser session)."""
    return list(_LOADED.values())


def show_error(exc: PlaygroundError) -> None:
    st.error(f"**{exc.message}**" + (f"  \n{exc.fix}" if exc.fix else ""), icon="⚠️")


@contextlib.contextmanager
def errors_shown() -> Iterator[None]:
    """User mistakes become an `st.error` with their fix, never a traceback; the rest of the page still draws."""
    try:
        yield
    except PlaygroundError as exc:
        show_error(exc)


def model_spec() -> tuple[str, str]:
    name = st.session_state.get("model_name", DEFAULT_MODEL)
    if name == OTHER:
        name = (st.session_state.get("model_path") or "").strip()
    if name == PROVIDER:
        name = f"{st.session_state.get('provider_model') or '?'} at {st.session_state.get('provider_url') or '?'}"
    return name, st.session_state.get("dtype", DTYPES[0])


def remote_model(picked: bool = False) -> Any | None:
    """The picked provider's model (chat only), or None when a local model is picked; `picked`: the provider
    set in the sidebar even while a local model is picked (the side-by-side page)."""
    if st.session_state.get("model_name") != PROVIDER and not picked:
        return None
    from llm_playground.errors import InputError
    from llm_playground.serve.client import RemoteChatModel

    url = (st.session_state.get("provider_url") or "").strip()
    name = (st.session_state.get("provider_model") or "").strip()
    if not url or not name:
        raise InputError("the provider needs a URL and a model name", "fill both in under Model in the sidebar")
    key_env = (st.session_state.get("provider_key_env") or "").strip()
    key = os.environ.get(key_env) if key_env else None
    if key_env and key is None:
        raise InputError(f"the environment variable {key_env} is not set", f"export {key_env}=… before `llmp ui`")
    return RemoteChatModel(_client(url, key), name)


def _preset_picked() -> None:
    preset = PROVIDERS.get(st.session_state.get("provider_preset") or "")
    if preset is not None:
        st.session_state["provider_url"] = preset.base_url
        st.session_state["provider_key_env"] = preset.key_env or ""
        st.session_state["provider_model"] = preset.example_model


def prices() -> Prices:
    """The price table for cost estimates: the workspace's prices.json, else the bundled list prices."""
    return load_prices(Workspace.current().prices_path)


@st.cache_resource(show_spinner=False)
def _client(url: str, key: str | None) -> Any:
    from llm_playground.serve.client import ProviderClient

    return ProviderClient(url, key)


def local_spec() -> str:
    """The picked local model's name or path; raises `InputError` for a provider or an empty path."""
    from llm_playground.errors import InputError

    if st.session_state.get("model_name") == PROVIDER:
        raise InputError("a provider's model can only chat here (its tokenizer and weights are not on this machine)",
                         "pick a local model in the sidebar for this page")
    spec = model_spec()[0]
    if not spec:
        raise InputError("no model path given", "type a .gguf file or a model directory, or pick a listed model")
    return spec


def load(spec: str) -> SharedModel:
    """Any listed model or trained run by name, in the sidebar's dtype (cached like the picked one)."""
    dtype = st.session_state.get("dtype", DTYPES[0])
    with st.spinner(f"Loading {spec} ({dtype})…"):
        return _load(spec, dtype)


def model() -> SharedModel:
    """The picked model, loaded once per process; raises `PlaygroundError` for a bad pick."""
    spec, dtype = local_spec(), model_spec()[1]
    with st.spinner(f"Loading {spec} ({dtype})…"):
        return _load(spec, dtype)


def trained_runs() -> list[Path]:
    """Runs of the workspace with a complete checkpoint: they can be loaded like any model."""
    return [run.path for run in Workspace.current().runs() if run.usable_checkpoint() is not None]


def model_choices() -> list[str]:
    names = [entry.name for entry in list_models()]
    return [*names, *[str(run) for run in trained_runs()], OTHER, PROVIDER]


def model_label(choice: str) -> str:
    return f"{Path(choice).name} (trained run)" if "/" in choice or "\\" in choice else choice


def model_picker() -> None:
    """The sidebar's model choice, shared by every page."""
    with st.sidebar:
        choices = model_choices()
        if st.session_state.get("model_name") not in choices:
            st.session_state["model_name"] = choices[0]
        st.selectbox("Model", choices, key="model_name", format_func=model_label,
                     help="see the Models page for details; finished training runs appear here too")
        if st.session_state["model_name"] == OTHER:
            st.text_input("Model path", key="model_path", placeholder="a .gguf file or a model directory")
        if st.session_state["model_name"] == PROVIDER:
            st.selectbox("Provider", [*PROVIDERS, OTHER_URL], key="provider_preset", index=None,
                         placeholder="a preset, or give the URL below", on_change=_preset_picked,
                         help="presets fill in the endpoint and the usual key variable; both stay editable")
            st.text_input("Provider URL", key="provider_url", placeholder="http://127.0.0.1:8000/v1")
            st.text_input("Provider model", key="provider_model", placeholder="smollm2, gpt-4o-mini, llama3…")
            st.text_input("API key variable", key="provider_key_env", placeholder="OPENAI_API_KEY (optional)",
                          help="the name of an environment variable holding the key; the key never enters the page")
            return
        st.selectbox("Weights", DTYPES, key="dtype", help="int4 decodes fastest on CPU (int8: closest to float32)")


@st.cache_resource(show_spinner=False)
def _store(path: str) -> ConversationStore:
    return ConversationStore(Path(path))


def conversation_store() -> ConversationStore:
    return _store(str(Workspace.current().conversations_db))
