"""Functions: definitions + requests → calls decoded under a grammar, validated, executed, traced step by step."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from llm_playground.errors import InputError, PlaygroundError
from llm_playground.functions import CallOutcome, FunctionSpec, call_functions, load_functions
from llm_playground.functions.batch import entry_for, run_batch
from llm_playground.functions.builtin import BUILTIN
from llm_playground.ui import common


def _example(name: str) -> str:
    return (resources.files("llm_playground.functions") / "examples" / name).read_text(encoding="utf-8")


def _init() -> None:
    if "fn_definitions" not in st.session_state:
        st.session_state["fn_definitions"] = _example("functions_definition.json")
        prompts = [item["prompt"] for item in json.loads(_example("function_calling_tests.json"))]
        st.session_state["fn_prompts"] = "\n".join(prompts)
        st.session_state["fn_execute"] = True


def _definitions_uploaded() -> None:
    upload = st.session_state.get("fn_definitions_file")
    if upload is not None:
        st.session_state["fn_definitions"] = upload.getvalue().decode("utf-8", errors="replace")


def _prompts_uploaded() -> None:
    upload = st.session_state.get("fn_prompts_file")
    if upload is None:
        return
    text = upload.getvalue().decode("utf-8", errors="replace")
    try:  # a JSON list of {"prompt": ...} (the course's format) or of strings; anything else: one per line
        data = json.loads(text)
        lines = [item["prompt"] if isinstance(item, dict) else str(item) for item in data]
    except (json.JSONDecodeError, TypeError, KeyError):
        lines = text.splitlines()
    st.session_state["fn_prompts"] = "\n".join(line.strip() for line in lines if str(line).strip())


def _options() -> dict[str, Any]:
    choice = st.session_state.get("fn_tool_choice", "required")
    return {"tool_choice": choice, "parallel": st.session_state.get("fn_parallel", False),
            "allow_none": st.session_state.get("fn_allow_none", False) or choice == "auto"}


def _call(specs: list[FunctionSpec], prompt: str) -> dict[str, Any]:
    model = common.model()
    options = _options()
    with st.spinner("Calling…"):  # the ranker and prompt prefix are shared per model (CallContext.shared)
        outcome = call_functions(model, [{"role": "user", "content": prompt}], specs, **options)
    entry = entry_for(prompt, outcome, options["parallel"], options["allow_none"],
                      BUILTIN if st.session_state.get("fn_execute", True) else None)
    return {"prompt": prompt, "entry": entry, "outcome": outcome}


def _batch(specs: list[FunctionSpec], prompts: list[str]) -> dict[str, Any]:
    model = common.model()
    options = _options()
    bar = st.progress(0.0, text=f"0 of {len(prompts)} calls")

    def done(index: int, entry: dict) -> None:
        bar.progress((index + 1) / len(prompts), text=f"{index + 1} of {len(prompts)} calls")

    report = run_batch(model, specs, prompts, parallel=options["parallel"], allow_none=options["allow_none"],
                       implementations=BUILTIN if st.session_state.get("fn_execute", True) else None,
                       on_done=done, tool_choice=options["tool_choice"])
    bar.empty()
    return {"report": report, "prompts": prompts}


def trace_figure(outcome: CallOutcome) -> go.Figure:
    steps = pd.DataFrame(outcome.steps)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    colours = ["#9aa0a6" if forced else "#1a73e8" for forced in steps["forced"]]
    fig.add_trace(go.Bar(x=steps["step"], y=steps["prob"], marker_color=colours, name="probability of the token",
                         text=steps["token"], hovertemplate="step %{x}: %{text} p=%{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=steps["step"], y=steps["allowed"], mode="lines+markers", name="tokens allowed",
                             line={"color": "#e8710a"}), secondary_y=True)
    fig.update_yaxes(title_text="probability", range=[0, 1.05], secondary_y=False)
    # A log scale only when the counts span decades (a free string allows most of the vocabulary).
    spread = steps["allowed"].dropna().max() > 100
    fig.update_yaxes(title_text="tokens the grammar allows", type="log" if spread else "linear",
                     rangemode="tozero", showgrid=False, tickmode="auto", tickformat="d", secondary_y=True)
    fig.update_layout(title="Step by step (grey: forced by the grammar, no choice)", xaxis_title="step",
                      height=380, margin={"t": 50, "b": 40}, legend={"orientation": "h", "y": -0.2})
    return fig


def show_outcome(prompt: str, entry: dict[str, Any], outcome: CallOutcome | None) -> None:
    st.markdown(f"**Request:** {prompt}")
    # As text, exactly as the output file writes it: a viewer of parsed JSON would show the number 2.0 as 2.
    st.code(json.dumps(entry, indent=2, ensure_ascii=False), language="json")
    if outcome is None:
        common.show_error(InputError(entry.get("error", "the call failed"), "see the message above"))
        return
    if outcome.stats.valid:
        calls = ", ".join(f"{c.name}({', '.join(f'{k}={v!r}' for k, v in c.arguments.items())})"
                          for c in outcome.calls) or "no function (none fits)"
        st.success(f"Valid: {calls} — JSON built under the grammar, checked by Pydantic against the declared types.")
    else:
        st.error(f"Not a valid call: {outcome.text!r}")
    s = outcome.stats
    columns = st.columns(5)
    for column, (label, value) in zip(columns, [("tokens", f"{s.tokens} ({s.forced_tokens} forced)"),
                                                ("choosing the function", f"{s.choose_ms:.0f} ms"),
                                                ("forward passes", f"{s.forward_ms:.0f} ms"),
                                                ("grammar masks", f"{s.mask_ms:.1f} ms"),
                                                ("total", f"{s.total_ms:.0f} ms")], strict=True):
        column.metric(label, value)
    if outcome.choice_probs:
        probs = pd.DataFrame(sorted(outcome.choice_probs.items(), key=lambda kv: -kv[1]),
                             columns=["function", "probability"])
        st.caption("Which function: each candidate's likelihood, as probabilities")
        st.bar_chart(probs, x="function", y="probability", horizontal=True, height=200)
    if outcome.steps:
        st.plotly_chart(trace_figure(outcome), width="stretch")
        table = pd.DataFrame(outcome.steps)
        table["top"] = [", ".join(f"{t} {p:.3f}" for t, p in top) for top in table["top"]]
        st.dataframe(table, hide_index=True, width="stretch")


# --- the page ------------------------------------------------------------------------------------------------

_init()
st.title("Functions")
st.caption("Requests become calls to your functions. The grammar (llguidance) lets the model write only a declared "
           "function with arguments of the declared types, so every answer is valid JSON by construction.")
left, right = st.columns(2)
with left:
    st.text_area("Function definitions (JSON: course, older course or OpenAI tools format)", key="fn_definitions",
                 height=260)
    st.file_uploader("…or upload a definitions file", type=["json"], key="fn_definitions_file",
                     on_change=_definitions_uploaded)
with right:
    st.text_area("Requests, one per line", key="fn_prompts", height=260)
    st.file_uploader("…or upload prompts (JSON list of {\"prompt\": …})", type=["json", "txt"], key="fn_prompts_file",
                     on_change=_prompts_uploaded)
with st.container(horizontal=True):
    st.radio("tool_choice", ["required", "auto"], key="fn_tool_choice", horizontal=True,
             help="auto may answer “no function fits” (name null)")
    st.checkbox("Several calls per answer (parallel)", key="fn_parallel")
    st.checkbox("Allow “no suitable function”", key="fn_allow_none")
    st.checkbox("Execute the calls (built-in example functions)", key="fn_execute")
with st.container(horizontal=True):
    call_one = st.button("Call the first request", type="primary", icon=":material/play_arrow:")
    call_all = st.button("Run every request (batch)", icon=":material/playlist_play:")

if call_one or call_all:
    st.session_state.pop("fn_result", None)
    try:
        definitions = st.session_state.get("fn_definitions") or ""
        if not definitions.strip():  # load_functions would take the empty text for a file name
            raise InputError("the function definitions are empty",
                             "paste a JSON list of functions on the left, or upload a definitions file")
        specs = load_functions(definitions)
        prompts = [line.strip() for line in st.session_state.get("fn_prompts", "").splitlines() if line.strip()]
        if not prompts:
            raise InputError("there are no requests", "type a request, one per line")
        st.session_state["fn_result"] = _call(specs, prompts[0]) if call_one else _batch(specs, prompts)
    except PlaygroundError as exc:
        common.show_error(exc)

result = st.session_state.get("fn_result")
if result is not None and "outcome" in result:
    show_outcome(result["prompt"], result["entry"], result["outcome"])
elif result is not None:
    report = result["report"]
    summary = report.summary()
    columns = st.columns(4)
    for column, (label, value) in zip(columns, [("calls", summary["calls"]), ("valid", f"{summary['valid_pct']}%"),
                                                ("per call", f"{summary['mean_ms_per_call']:.0f} ms"),
                                                ("forward per token", f"{summary['forward_ms_per_token']} ms")],
                                      strict=True):
        column.metric(label, value)
    # Values as JSON text: a column mixing numbers and strings (results) cannot be shown as one typed column.
    table = [{key: value if key in ("prompt", "name") else json.dumps(value, ensure_ascii=False)
              for key, value in entry.items()} for entry in report.entries]
    st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
    st.download_button("Download the results (JSON)", json.dumps(report.entries, indent=2, ensure_ascii=False),
                       file_name="function_calling_results.json", mime="application/json")
    picked = st.selectbox("Trace of", range(len(result["prompts"])), format_func=result["prompts"].__getitem__,
                          key="fn_trace_pick")
    show_outcome(result["prompts"][picked], report.entries[picked], report.outcomes[picked])
