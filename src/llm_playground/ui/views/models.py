"""Models: what can be picked, where it lives, and which models this process holds."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from llm_playground.model import list_models
from llm_playground.model.gpt_model import CONFIG, checkpoint_for
from llm_playground.train.metrics import read_metrics
from llm_playground.ui import common
from llm_playground.workspace import RunDir

st.title("Models")
spec, dtype = common.model_spec()
st.markdown(f"Picked in the sidebar: **{spec or '(no path yet)'}** ({dtype}). A model is loaded once per "
            "process, on first use, and shared by every browser tab.")

st.subheader("Available")
entries = list_models()
st.dataframe(pd.DataFrame([{"name": e.name, "description": e.description, "file": e.location,
                            "converted (cache)": e.converted or "not yet (converted on first load, ~25 s)"}
                           for e in entries]), hide_index=True, width="stretch")
st.caption("The picker's “other (a path)” also takes any .gguf file or Hugging Face model directory.")

st.subheader("Trained here (runs/)")
runs = common.trained_runs()
if not runs:
    st.info("No trained runs yet: the Train page builds one (the tiny preset takes minutes on 2 cores).")
else:
    rows = []
    for run in runs:
        records = read_metrics(RunDir(run).metrics)
        evals = [r for r in records if r["kind"] == "eval"]
        checkpoint = checkpoint_for(run)
        saved = json.loads((checkpoint / CONFIG).read_text(encoding="utf-8")).get("step")
        rows.append({"run": run.name, "checkpoint": str(checkpoint),
                     "steps trained": max((r["step"] for r in records), default=None),
                     "checkpoint's step": saved,
                     "best validation loss": min((r["val_loss"] for r in evals), default=None)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

st.subheader("Loaded in this process")
if st.button("Load the picked model now"):
    with common.errors_shown():
        info = common.model().info
        st.success(f"{info.name}: {info.parameters / 1e6:.1f}M parameters, {info.backend} backend, {info.dtype}.")
loaded = common.loaded_models()
if not loaded:
    st.info("None yet: the first chat message or analysis loads the picked model.")
else:
    st.dataframe(pd.DataFrame([{"model": m["name"], "parameters": f"{m['parameters'] / 1e6:.1f}M",
                                "context": m["context_length"], "vocab": m["vocab_size"], "dtype": m["dtype"],
                                "backend": m["backend"], "architecture": m["architecture"],
                                "location": m["location"]} for m in loaded]),
                 hide_index=True, width="stretch")

