"""The script Streamlit runs: page setup, the shared model picker, navigation between the pages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from llm_playground.ui import common

VIEWS = Path(__file__).parent / "views"

st.set_page_config(page_title="LLM Playground", page_icon=":material/science:", layout="wide")
common.keep_state()
page = st.navigation([
    st.Page(VIEWS / "chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page(VIEWS / "compare.py", title="Side by side", icon=":material/compare:"),
    st.Page(VIEWS / "explore.py", title="Explore", icon=":material/biotech:"),
    st.Page(VIEWS / "functions.py", title="Functions", icon=":material/function:"),
    st.Page(VIEWS / "knowledge.py", title="Knowledge", icon=":material/menu_book:"),
    st.Page(VIEWS / "agent.py", title="Agent", icon=":material/smart_toy:"),
    st.Page(VIEWS / "train.py", title="Train", icon=":material/model_training:"),
    st.Page(VIEWS / "models.py", title="Models", icon=":material/inventory_2:"),
])
common.model_picker()
page.run()
