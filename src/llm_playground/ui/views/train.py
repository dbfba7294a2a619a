"""Train: the build pipeline's status, a training run started in the background, its live loss curve and samples."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from llm_playground.data import pipeline_status
from llm_playground.errors import InputError, PlaygroundError
from llm_playground.train.config import PRESETS
from llm_playground.train.metrics import loss_figure, read_metrics
from llm_playground.ui import common, jobs
from llm_playground.workspace import RunDir, Workspace

BUNDLED = "the bundled corpus (Shakespeare's plays)"
UPLOADED = "an uploaded text file"


def status_table(workspace: Workspace) -> pd.DataFrame:
    """The build flow's stages as `llmp status` reports them (`data.pipeline_status`)."""
    status = pipeline_status(workspace)
    return pd.DataFrame([{"stage": stage.title, "state": stage.state, "where": stage.path, "details": stage.details,
                          "made by": stage.command} for stage in status.stages])


def _start(workspace: Workspace) -> None:
    try:
        text = None
        if st.session_state.get("train_source") == UPLOADED:
            upload = st.session_state.get("train_upload")
            if upload is None:
                raise InputError("no file uploaded", "upload a UTF-8 text file, or train on the bundled corpus")
            text = upload.getvalue().decode("utf-8", errors="replace")
        jobs.use_corpus(workspace, text)
        settings = [line.strip() for line in st.session_state.get("train_settings", "").splitlines() if line.strip()]
        if st.session_state.get("train_max_iters"):
            settings.append(f"max_iters={int(st.session_state['train_max_iters'])}")
        name = st.session_state.get("train_name", "").strip()
        jobs.start(workspace, name, st.session_state.get("train_preset", "tiny"), settings)
        st.session_state["train_run"] = name
    except PlaygroundError as exc:
        st.session_state["train_error"] = {"message": exc.message, "fix": exc.fix}


def start_form(workspace: Workspace) -> None:
    with st.expander("Start a training run", expanded=not workspace.runs()):
        left, middle, right = st.columns(3)
        left.text_input("Run name (runs/NAME)", "tiny", key="train_name")
        middle.selectbox("Preset", list(PRESETS), key="train_preset",
                         help="tiny: 2 CPU cores, minutes; small and gpt2-124m want a GPU")
        right.number_input("Iterations", min_value=1, value=None, step=100, key="train_max_iters",
                           placeholder="the preset's")
        st.radio("Train on", [BUNDLED, UPLOADED], key="train_source", horizontal=True,
                 help="either one replaces data/raw/corpus.txt when it holds another text")
        st.file_uploader("Text file (replaces data/raw/corpus.txt; the tokenizer and prepared data are rebuilt)",
                         type=["txt", "md"], key="train_upload")
        st.text_area("More settings, one key=value a line (as `llmp train --set`)", key="train_settings",
                     placeholder="n_layer=2\nlearning_rate=0.002", height=80)
        st.button("Start training", type="primary", icon=":material/model_training:", on_click=_start,
                  args=(workspace,))


def run_view(workspace: Workspace, run_dir: Path) -> None:
    current = jobs.job(run_dir)
    records = read_metrics(RunDir(run_dir).metrics)
    if current is not None and current.running:
        st.info(f"Training in the background (pid {current.pid}); the curve updates every few seconds.",
                icon=":material/autorenew:")
        st.button("Stop", icon=":material/stop_circle:", on_click=jobs.stop, args=(current,),
                  help="the trainer saves a checkpoint, then exits; resume it with `llmp train --resume`")
    elif current is not None:
        code = current.returncode
        # No status for a process another server started: the log says how it ended.
        outcomes = {None: "ended (see the log)", 0: "finished", 130: "stopped (checkpoint saved)"}
        outcome = outcomes.get(code, f"failed (exit {code}, see the log)")
        st.caption(f"Last background run {outcome}.")
    if records:
        evals = [r for r in records if r["kind"] == "eval"]
        columns = st.columns(3)
        columns[0].metric("step", records[-1]["step"])
        columns[1].metric("train loss", f"{records[-1].get('loss', records[-1].get('train_loss', 0)):.3f}")
        columns[2].metric("validation loss", f"{evals[-1]['val_loss']:.3f}" if evals else "—")
        st.plotly_chart(loss_figure(records, f"runs/{run_dir.name}"), width="stretch")
        samples = [(r["step"], r["sample"]) for r in evals if r.get("sample")]
        if samples:
            st.markdown("**Samples** (generated at each evaluation)")
            for step, sample in samples[-3:][::-1]:
                st.code(sample, language=None, wrap_lines=True)
                st.caption(f"step {step}")
    elif current is None:
        st.caption("No metrics yet.")
    if current is not None:
        with st.expander("Log", expanded=not records):
            st.code(jobs.log_tail(current) or "(empty)", language=None)
    if run_dir in common.trained_runs():
        st.success(f"runs/{run_dir.name} has a checkpoint: pick it as the model in the sidebar to chat with it or "
                   "explore it.", icon=":material/check_circle:")


# --- the page ------------------------------------------------------------------------------------------------

workspace = Workspace.current()
st.title("Train")
st.caption(f"Build your own GPT in {workspace.root}: collect → tokenizer → prepare → train. "
           "Training runs as `llmp pipeline` in the background: it survives page reloads.")
if error := st.session_state.pop("train_error", None):
    common.show_error(PlaygroundError(error["message"], error["fix"]))
st.subheader("Pipeline")
st.dataframe(status_table(workspace), hide_index=True, width="stretch")
start_form(workspace)

runs = [run.name for run in workspace.runs()]
if runs:
    st.subheader("Runs")
    if st.session_state.get("train_run") not in runs:
        st.session_state["train_run"] = runs[-1]
    picked = st.selectbox("Run", runs, key="train_run")
    running = (current := jobs.job(workspace.run_dir(picked))) is not None and current.running

    @st.fragment(run_every=3 if running else None)
    def live() -> None:
        if running:
            now = jobs.job(workspace.run_dir(picked))
            if now is None or not now.running:
                st.rerun()  # finished: redraw the whole app, so the new model shows in the picker
        run_view(workspace, workspace.run_dir(picked))

    live()
