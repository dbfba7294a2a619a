"""Knowledge: upload documents, see their chunks, search with each retriever's score, ask with citations."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from llm_playground.errors import InputError
from llm_playground.knowledge import open_kb
from llm_playground.knowledge.answer import Answer, ask
from llm_playground.knowledge.readers import SUFFIXES
from llm_playground.knowledge.store import MODES
from llm_playground.ui import common, sampling
from llm_playground.workspace import Workspace

workspace = Workspace.current()
kb = open_kb(workspace)
sampling.sidebar()
st.title("Knowledge")
st.caption(f"{kb.status()['files']} files, {kb.status()['chunks']} chunks in {workspace.relative(kb.store.path)} · "
           f"embedder {kb.embedder_name} · the same base as `llmp kb`")


def _save_uploads() -> None:
    uploads = st.session_state.get("kb_uploads") or []
    if not uploads:
        raise InputError("no files chosen", "pick files with the uploader first")
    folder = workspace.knowledge_dir
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for upload in uploads:
        name = re.sub(r"[^\w.\- ]", "_", upload.name).strip() or "upload.txt"
        (folder / name).write_bytes(upload.getvalue())
        paths.append(folder / name)
    bar = st.progress(0.0, text="embedding…")

    def progress(event: str, path: str, done: int, total: int) -> None:
        if event == "chunks" and total:
            bar.progress(done / total, text=f"{path}: {done} of {total} chunks")

    with st.spinner("Adding…"):
        report = kb.add(paths, progress=progress)
    bar.empty()
    st.session_state["kb_report"] = report


tab_files, tab_search, tab_ask = st.tabs(["Documents", "Search", "Ask"])

with tab_files, common.errors_shown():
    st.file_uploader("Add documents", type=[s.lstrip(".") for s in SUFFIXES], accept_multiple_files=True,
                     key="kb_uploads")
    if st.button("Add to the knowledge base", key="kb_add", type="primary"):
        _save_uploads()
    report = st.session_state.get("kb_report")
    if report is not None:
        st.success(f"added {len(report.added)}, replaced {len(report.replaced)}, unchanged {len(report.unchanged)}; "
                   f"{report.chunks} chunks in {report.seconds:.1f} s ({report.chunks_per_s:.1f} chunks/s)")
        for path, why in report.skipped:
            st.warning(f"skipped {path}: {why}")
    files = kb.files()
    if files:
        st.dataframe(pd.DataFrame([{"file": f.path, "title": f.title, "chunks": f.chunks, "bytes": f.bytes}
                                   for f in files]), hide_index=True, use_container_width=True)
        chosen = st.selectbox("See the chunks of", [f.path for f in files], key="kb_file")
        chunks = kb.chunks_of(chosen)
        st.dataframe(pd.DataFrame([{"#": c.position, "span": f"{c.start}–{c.end}",
                                    "tokens": kb.embedder.count_tokens(c.text), "page": c.metadata.get("page"),
                                    "text": c.text} for c in chunks]), hide_index=True, use_container_width=True)
        if st.button(f"Remove {chosen}", key="kb_remove"):
            kb.remove(kb.root / chosen)
            st.rerun()
    else:
        st.info("The knowledge base is empty: upload .txt, .md, .html, .pdf or .jsonl files above.")

with tab_search, common.errors_shown():
    query = st.text_input("Search", key="kb_query", placeholder="what to look for")
    cols = st.columns(2)
    mode = cols[0].radio("Retriever", MODES, horizontal=True, key="kb_mode")
    k = cols[1].slider("Results", 1, 20, 5, key="kb_k")
    if query.strip():
        hits = kb.search(query, k=k, mode=mode)  # type: ignore[arg-type]  # a radio over MODES
        if not hits:
            st.info("no results")
        st.dataframe(pd.DataFrame([{"rank": r, "source": h.source, "span": f"{h.start}–{h.end}",
                                    "fused": round(h.score, 4) if mode == "hybrid" else None,
                                    "dense": None if h.dense is None else round(h.dense, 3),
                                    "dense rank": h.dense_rank,
                                    "bm25": None if h.bm25 is None else round(h.bm25, 2), "bm25 rank": h.bm25_rank,
                                    "text": " ".join(h.text.split())[:200]} for r, h in enumerate(hits, 1)]),
                     hide_index=True, use_container_width=True)


def _show_answer(result: Answer) -> None:
    # [n] becomes a link to the source's anchor below: the citations are clickable
    text = re.sub(r"\[(\d+)\]", lambda m: f"[[{m.group(1)}]](#source-{m.group(1)})", result.answer)
    (st.warning if result.abstained else st.markdown)(text)
    if result.abstained:
        st.caption("nothing relevant was retrieved" if result.reason == "retrieval"
                   else "the model found no answer in the sources")
    for citation in result.citations:
        hit = citation.hit
        st.markdown(f'<a id="source-{citation.n}"></a>', unsafe_allow_html=True)
        label = f"[{citation.n}] {hit.source} {hit.start}–{hit.end}" + (" (attributed)" if citation.attributed else "")
        with st.expander(label, expanded=citation.n == result.citations[0].n):
            st.write(hit.text)
    st.caption(" · ".join(f"{k} {v:.0f} ms" for k, v in result.timings.items()))


with tab_ask, common.errors_shown():
    question = st.text_input("Question", key="kb_question", placeholder="ask the documents")
    extractive = st.toggle("Extractive (quote the closest sentence, no language model)", key="kb_extractive")
    if st.button("Ask", key="kb_ask", type="primary"):
        if kb.store.chunk_count() == 0:
            raise InputError("the knowledge base is empty", "add documents first")
        model = None if extractive else common.model()
        st.session_state["kb_answer"] = ask(kb, question, model, sampling.params(), extractive=extractive)
    if st.session_state.get("kb_answer") is not None:
        _show_answer(st.session_state["kb_answer"])
