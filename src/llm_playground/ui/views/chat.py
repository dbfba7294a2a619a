"""Chat: streamed answers from the one generation loop, conversations kept in SQLite."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import streamlit as st

from llm_playground.conversations import Message, title_from
from llm_playground.errors import InputError, PlaygroundError
from llm_playground.generate import Generation, SamplingParams
from llm_playground.generate.prompt import fit_history, render
from llm_playground.ui import common, sampling

store = common.conversation_store()


def _stats(meta: dict[str, Any]) -> str:
    if not meta:
        return ""
    parts = [f"{meta.get('tokens', 0)} tokens", f"{meta.get('tokens_per_s', 0):.1f} tokens/s",
             str(meta.get("finish_reason", "")), f"seed {meta.get('seed')}" if meta.get("seed") is not None else "",
             str(meta.get("model", ""))]
    return " · ".join(p for p in parts if p)


def _deltas(generation: Generation, parts: list[str]) -> Iterator[str]:
    for event in generation:
        parts.append(event.text)
        if event.text:
            yield event.text


def _kept(deltas: Iterator[str], parts: list[str]) -> Iterator[str]:
    for delta in deltas:
        parts.append(delta)
        yield delta


def _turn_lock() -> threading.Lock:
    """Held while this session writes an answer.

    A click during an answer (Stop, or any widget) makes Streamlit start a new run at once, in a new thread,
    while the old run is still being stopped; the new run waits here until the old one has stored what it
    had written, so it draws the conversation with the partial answer in it.
    """
    return st.session_state.setdefault("_chat_turn_lock", threading.Lock())


def _answer(conversation_id: int, history: list[dict[str, str]], params: SamplingParams, system: str) -> None:
    """Stream the assistant's answer and store it; a Stop click (a rerun) stores what was said so far."""
    with st.chat_message("assistant"):
        try:
            remote = common.remote_model()
        except PlaygroundError as exc:
            common.show_error(exc)
            return
        if remote is not None:
            _answer_remote(remote, conversation_id, history, params, system)
            return
        try:
            model = common.model()
            messages = ([{"role": "system", "content": system}] if system else []) + history
            fitted = fit_history(model.tokenizer, messages, model.context_length - params.max_new_tokens)
            generation = Generation(model, model.tokenizer.encode(render(model.tokenizer, fitted)), params)
        except PlaygroundError as exc:
            common.show_error(exc)
            return
        parts: list[str] = []
        start = time.perf_counter()
        with _turn_lock():
            try:
                st.write_stream(_deltas(generation, parts))
            finally:
                # Runs on a Stop click too: Streamlit interrupts this run with an exception at its next call.
                meta = _outcome(generation, parts, time.perf_counter() - start, model.info.name)
                if parts:
                    store.add(conversation_id, "assistant", meta.pop("text"), meta, model=model.info.name,
                              system=system or "")  # "" records "no system prompt"; None leaves it
        st.caption(_stats(meta))


def _answer_remote(remote: Any, conversation_id: int, history: list[dict[str, str]], params: SamplingParams,
                   system: str) -> None:
    """The same turn through an OpenAI-compatible provider (`serve.client`): streamed, stored, measured."""
    messages = ([{"role": "system", "content": system}] if system else []) + history
    stream = remote.stream(messages, params)
    parts: list[str] = []
    with _turn_lock():
        try:
            for_display = _kept(stream, parts)
            st.write_stream(for_display)
        except PlaygroundError as exc:
            common.show_error(exc)
        finally:
            reply = stream.reply
            seconds = reply.total_ms / 1000 if reply.total_ms else 0.0
            meta = {"tokens": reply.completion_tokens, "finish_reason": reply.finish_reason or "stopped",
                    "tokens_per_s": round(reply.completion_tokens / seconds, 2) if seconds else 0.0,
                    "seed": params.seed, "model": remote.label}
            if parts:
                store.add(conversation_id, "assistant", "".join(parts).strip(), meta, model=remote.label,
                          system=system or "")
    st.caption(_stats(meta))


def _outcome(generation: Generation, parts: list[str], elapsed: float, model_name: str) -> dict[str, Any]:
    """The answer's text and statistics, whether it finished or was stopped halfway."""
    if generation.results:
        result = generation.results[0]
        return {"text": result.text.strip(), "tokens": result.completion_tokens,
                "tokens_per_s": round(result.decode_tokens_per_s, 2), "finish_reason": result.finish_reason,
                "seed": result.seed, "prefill_ms": round(result.prefill_ms, 1), "model": model_name}
    return {"text": "".join(parts).strip(), "tokens": len(parts),
            "tokens_per_s": round(len(parts) / elapsed, 2) if elapsed else 0.0, "finish_reason": "stopped",
            "seed": generation.seed, "model": model_name}


def _show(messages: list[Message]) -> None:
    for message in messages:
        with st.chat_message(message.role):
            st.markdown(message.content)
            if message.role == "assistant" and message.meta:
                st.caption(_stats(message.meta))


# --- sidebar: conversations ----------------------------------------------------------------------------------

def _set_error(exc: PlaygroundError) -> None:
    st.session_state["chat_error"] = {"message": exc.message, "fix": exc.fix}


def _new_chat() -> None:
    st.session_state["conversation_id"] = None


def _picked() -> None:
    st.session_state["conversation_id"] = st.session_state["conversation_radio"]


def _rename(conversation_id: int) -> None:
    try:
        store.rename(conversation_id, st.session_state.get("rename_title", ""))
    except PlaygroundError as exc:
        _set_error(exc)


def _delete(conversation_id: int) -> None:
    store.delete(conversation_id)
    st.session_state["conversation_id"] = None


def _conversations_sidebar(slot: Any, current: int | None) -> None:
    with slot:
        st.subheader("Conversations")
        st.button("New chat", icon=":material/add:", on_click=_new_chat, width="stretch")
        conversations = store.list()
        if not conversations:
            st.caption("No conversations yet: send a message to start one.")
            return
        titles = {c.id: c.title for c in conversations}
        if current in titles:
            st.session_state["conversation_radio"] = current
        else:
            st.session_state.pop("conversation_radio", None)
        st.radio("Open", list(titles), key="conversation_radio", format_func=titles.__getitem__,
                 on_change=_picked, index=None, label_visibility="collapsed")
        if current not in titles:
            return
        with st.expander("Rename, delete, export"):
            st.text_input("Title", value=titles[current], key="rename_title")
            st.button("Rename", on_click=_rename, args=(current,))
            st.button("Delete", on_click=_delete, args=(current,), type="primary")
            st.download_button("Export as JSON", json.dumps(store.export(current), ensure_ascii=False, indent=2),
                               file_name=f"conversation-{current}.json", mime="application/json")


# --- the page ------------------------------------------------------------------------------------------------

# Drawn last (after a new conversation may have been created) but shown above the generation settings.
conversations_slot = st.sidebar.container()
sampling.sidebar()
conversation_id: int | None = st.session_state.get("conversation_id")
if conversation_id is not None and conversation_id not in {c.id for c in store.list()}:
    conversation_id = st.session_state["conversation_id"] = None

st.title("Chat")
if error := st.session_state.pop("chat_error", None):
    common.show_error(PlaygroundError(error["message"], error["fix"]))
with st.container(horizontal=True):
    stopped = st.button("Stop", icon=":material/stop_circle:",
                        help="stop the answer being written (what was said so far is kept)")
    regenerate = st.button("Regenerate", icon=":material/refresh:", help="answer the last message again")
    cleared = st.button("Clear", icon=":material/delete_sweep:", help="remove every message of this conversation")
if cleared and conversation_id is not None:
    store.clear(conversation_id)

if _turn_lock().acquire(timeout=30):  # an interrupted answer of this session is stored first
    _turn_lock().release()
messages = store.messages(conversation_id) if conversation_id is not None else []
pending_answer = False
if regenerate:
    if messages and messages[-1].role == "assistant":
        store.delete_message(messages[-1].id)
        messages = messages[:-1]
    pending_answer = bool(messages) and messages[-1].role == "user"
    if not pending_answer:
        common.show_error(InputError("there is no message to answer again", "send a message first"))
if stopped:
    st.toast("Stopped.")
_show(messages)

prompt = st.chat_input("Ask something")
if prompt is not None:
    if not prompt.strip():
        common.show_error(InputError("the message is empty", "type something before sending"))
    else:
        if conversation_id is None:
            conversation_id = store.create(title_from(prompt), common.model_spec()[0])
            st.session_state["conversation_id"] = conversation_id
        store.add(conversation_id, "user", prompt)
        messages = store.messages(conversation_id)
        _show(messages[-1:])
        pending_answer = True

if pending_answer and conversation_id is not None:
    try:
        params = sampling.params()
    except PlaygroundError as exc:
        common.show_error(exc)
    else:
        _answer(conversation_id, [m.as_chat() for m in messages if m.role != "system"], params,
                st.session_state.get("system_prompt", "").strip())

_conversations_sidebar(conversations_slot, st.session_state.get("conversation_id"))
