"""The sampling sidebar: presets, one slider per parameter, a seed; the values become one `SamplingParams`."""

from __future__ import annotations

from typing import Any

import streamlit as st

from llm_playground.generate.params import SamplingParams

PRESETS: dict[str, dict[str, Any]] = {
    # Greedy: the same answer every time; a light penalty keeps a small model out of loops.
    "precise": {"temperature": 0.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "repetition_penalty": 1.1,
                "frequency_penalty": 0.0, "presence_penalty": 0.0},
    "balanced": {"temperature": 0.7, "top_k": 50, "top_p": 0.9, "min_p": 0.0, "repetition_penalty": 1.1,
                 "frequency_penalty": 0.0, "presence_penalty": 0.0},
    # Hotter, with min-p cutting the tail that a high temperature lifts.
    "creative": {"temperature": 1.1, "top_k": 0, "top_p": 1.0, "min_p": 0.05, "repetition_penalty": 1.05,
                 "frequency_penalty": 0.0, "presence_penalty": 0.0},
}
CUSTOM = "custom"
DEFAULT_PRESET = "balanced"
DEFAULT_MAX_NEW_TOKENS = 256
DEFAULT_LIMIT = 2048
# (label, min, max, step, help) per slider; the ranges are a comfortable subset of what SamplingParams allows.
SLIDERS: dict[str, tuple[str, float, float, float, str]] = {
    "temperature": ("Temperature", 0.0, 2.0, 0.05, "0 = greedy (always the most likely token)"),
    "top_k": ("Top-k", 0, 200, 1, "keep the k most likely tokens; 0 = off"),
    "top_p": ("Top-p", 0.05, 1.0, 0.05, "keep the smallest set whose probability reaches p; 1 = off"),
    "min_p": ("Min-p", 0.0, 0.5, 0.01, "drop tokens below min-p × the top probability; 0 = off"),
    "repetition_penalty": ("Repetition penalty", 0.5, 2.0, 0.05, "> 1 discourages tokens already in the context"),
    # OpenAI's two penalties, on the tokens of the answer only: per occurrence, and once per distinct token.
    "frequency_penalty": ("Frequency penalty", -2.0, 2.0, 0.1,
                          "subtract this × how often a token already appears in the answer; 0 = off"),
    "presence_penalty": ("Presence penalty", -2.0, 2.0, 0.1,
                         "subtract this once from every token already in the answer; 0 = off"),
}
# What a conversation remembers of the settings it was written with (restored when it is reopened).
SETTINGS = (*SLIDERS, "max_new_tokens", "seed")


def _apply_preset() -> None:
    preset = st.session_state.get("preset", DEFAULT_PRESET)
    if preset in PRESETS:
        st.session_state.update(PRESETS[preset])


def _became_custom() -> None:
    st.session_state["preset"] = CUSTOM


def init_state() -> None:
    if "temperature" not in st.session_state:
        st.session_state["preset"] = DEFAULT_PRESET
        st.session_state.update(PRESETS[DEFAULT_PRESET])
        st.session_state["max_new_tokens"] = DEFAULT_MAX_NEW_TOKENS
        st.session_state.setdefault("system_prompt", "")
    for name in ("frequency_penalty", "presence_penalty"):
        st.session_state.setdefault(name, 0.0)


def preset_of(values: dict[str, Any]) -> str:
    """The preset these slider values are, or "custom"."""
    for name, preset in PRESETS.items():
        if all(values.get(key) == value for key, value in preset.items()):
            return name
    return CUSTOM


def restore(settings: dict[str, Any]) -> None:
    """Put a conversation's saved settings back into the sidebar (called before the widgets are drawn)."""
    known = {key: value for key, value in settings.items() if key in SETTINGS}
    for name, (_, low, high, _, _) in SLIDERS.items():
        if name in known and known[name] is not None:
            known[name] = type(low)(min(max(known[name], low), high))
    st.session_state.update(known)
    st.session_state["preset"] = preset_of({key: st.session_state.get(key) for key in SLIDERS} | known)


def answer_limit(context_length: int | None) -> int:
    """The largest "max new tokens" the slider offers: at most half the context, so a prompt still fits."""
    if not context_length:
        return DEFAULT_LIMIT
    return max(1, min(DEFAULT_LIMIT, context_length // 2))


def sidebar(max_tokens: int = 2048) -> None:
    init_state()
    if st.session_state.get("max_new_tokens", 0) > max_tokens:  # a smaller model was picked: bound the value
        st.session_state["max_new_tokens"] = max_tokens
    with st.sidebar.expander("Generation settings", expanded=True):
        st.radio("Preset", [*PRESETS, CUSTOM], key="preset", horizontal=True, on_change=_apply_preset)
        for name, (label, low, high, step, help_text) in SLIDERS.items():
            st.slider(label, low, high, step=step, key=name, help=help_text, on_change=_became_custom)
        st.slider("Max new tokens", 1, max(2, max_tokens), step=1, key="max_new_tokens",
                  help=f"at most {max_tokens} for this model: half its context, so the prompt still fits")
        st.number_input("Seed", value=None, min_value=0, step=1, key="seed", placeholder="random",
                        help="same seed + settings + model → same answer; empty = a new random seed each time")
        st.text_area("System prompt", key="system_prompt", height=80, placeholder="optional, e.g. Answer briefly.")


def params() -> SamplingParams:
    """The settings as validated parameters (raises `InvalidParameter` with the fix)."""
    values = {name: st.session_state.get(name) for name in SETTINGS}
    return SamplingParams.create(**values)
