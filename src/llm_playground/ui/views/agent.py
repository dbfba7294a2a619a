"""Agent: a task → tool calls decoded under the grammar → the answer; steps appear as they happen, and every
recorded run's timeline can be opened again (the same agent.sqlite3 `llmp runs` reads)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from llm_playground.agent import Agent, AgentRun, RunRecord, RunStore, StepRecord, builtin_tools, select_tools
from llm_playground.agent.answer import MODES
from llm_playground.agent.loop import DEFAULT_MAX_STEPS
from llm_playground.ui import common
from llm_playground.workspace import Workspace


@st.cache_resource(show_spinner=False)
def _store(path: str) -> RunStore:
    return RunStore(Path(path))


def store() -> RunStore:
    return _store(str(Workspace.current().agent_db))


def _step_markdown(step: StepRecord) -> str:
    if step.kind == "answer":
        return f"**{step.step}. answer** · {step.ms:.0f} ms"
    arguments = json.dumps(step.arguments, ensure_ascii=False)
    mark = "❌" if step.error else "→"
    return f"**{step.step}. `{step.tool}`**(`{arguments}`) {mark} `{step.result}` · {step.ms:.0f} ms"


def _timeline(record: RunRecord) -> pd.DataFrame:
    return pd.DataFrame([{"step": s.step, "kind": s.kind, "tool": s.tool or "",
                          "arguments": "" if s.arguments is None else json.dumps(s.arguments, ensure_ascii=False),
                          "result": s.result or "", "error": s.error or "", "tokens": s.prompt_tokens
                          + s.completion_tokens, "ms": round(s.ms)} for s in record.timeline])


def _run(task: str) -> None:
    tools = select_tools(st.session_state.get("agent_tools") or ["builtin"])
    if st.session_state.get("agent_kb"):
        from llm_playground.agent.kb import kb_tool

        tools.append(kb_tool(Workspace.current()))
    agent = Agent(common.model(), tools, max_steps=int(st.session_state.get("agent_max_steps", DEFAULT_MAX_STEPS)),
                  answer=st.session_state.get("agent_answer", "model"), store=store(),
                  model_name=common.model_spec()[0])
    run = AgentRun(task)
    with st.status("Running…", expanded=True) as status:
        for step in agent.iter_run(task, run):
            st.markdown(_step_markdown(step))
        status.update(label=f"{run.status} · {len(run.steps)} steps · {run.ms / 1000:.1f} s", state="complete",
                      expanded=True)
    st.success(f"**Answer:** {run.answer}" if run.answer is not None else f"No answer: {run.status}")
    st.session_state["agent_shown"] = run.run_id


st.title("Agent")
st.caption("Each step the model calls one tool (its arguments decoded under the tool's grammar) or answers; "
           "tool results go back to it as `tool` messages. See docs/agent.md for the rules it follows.")
names = list(builtin_tools())
# Defaults set once, not passed to the widgets: the values are kept across pages (common.KEPT).
st.session_state.setdefault("agent_tools", names)
st.session_state.setdefault("agent_max_steps", DEFAULT_MAX_STEPS)
left, right = st.columns([3, 2])
with left:
    task = st.text_area("Task", key="agent_task", placeholder="What is 17 * 23?", height=80)
    run_clicked = st.button("Run", type="primary", key="agent_run")
with right:
    st.multiselect("Tools", names, key="agent_tools")
    kb_ready = Workspace.current().kb_db.exists()
    st.checkbox("Knowledge base (kb_search)", key="agent_kb", disabled=not kb_ready,
                help="search the documents added with `llmp kb add` or on the Knowledge page")
    st.number_input("Max steps", min_value=1, max_value=20, key="agent_max_steps")
    st.radio("Final answer", MODES, key="agent_answer", horizontal=True,
             help="template: a task answered by one call with a scalar result gets a templated answer")

if run_clicked:
    with common.errors_shown():
        if not (task or "").strip():
            from llm_playground.errors import InputError

            raise InputError("the task is empty", "type what the agent should do")
        _run(task)

with common.errors_shown():
    records = store().runs(50)
    if records:
        st.subheader("Recorded runs")
        ids = [r.id for r in records]
        if st.session_state.get("agent_shown") not in ids:
            st.session_state["agent_shown"] = ids[0]
        chosen = st.selectbox("Run", ids, key="agent_shown",
                              format_func=lambda i: next(f"#{r.id} · {r.status} · {r.task[:60]}"
                                                         for r in records if r.id == i))
        record = store().get(int(chosen))
        if record is not None:
            mode = f" ({record.answer_mode})" if record.answer_mode else ""
            st.markdown(f"**Answer{mode}:** {record.answer or '(none: ' + record.status + ')'}")
            st.dataframe(_timeline(record), hide_index=True, use_container_width=True)
            st.caption(f"{record.model} · {record.steps} steps · {record.prompt_tokens + record.completion_tokens} "
                       f"tokens · {(record.ms or 0) / 1000:.1f} s · started {record.started[:19]}")
