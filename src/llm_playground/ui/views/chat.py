"""Chat: streamed answers from the one generation loop, conversations kept in SQLite as trees."""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import streamlit as st

from llm_playground.conversations import Conversation, Message, title_from
from llm_playground.errors import ContextOverflow, InputError, PlaygroundError
from llm_playground.generate import Generation, SamplingParams
from llm_playground.generate.chat import chat_turn, with_system
from llm_playground.ui import common, sampling

store = common.conversation_store()
STOPPED_NOTICE = ("The answer was stopped (by Stop, another click or a page switch): what it had written so far "
                  "is kept. Regenerate answers again.")


def _stats(meta: dict[str, Any]) -> str:
    if not meta:
        return ""
    parts = [f"{meta.get('tokens', 0)} tokens", f"{meta.get('tokens_per_s', 0):.1f} tokens/s",
             str(meta.get("finish_reason", "")), f"seed {meta.get('seed')}" if meta.get("seed") is not None else "",
             str(meta.get("model", ""))]
    return " · ".join(p for p in parts if p)


def _deltas(generation: Generation, parts: list[str], steps: list[dict[str, Any]]) -> Iterator[str]:
    for event in generation:
        parts.append(event.text)
        if steps and steps[-1]["id"] == event.token_id and not event.top_alternatives:
            steps[-1]["t"] += event.text  # the detokenizer's held-back tail, flushed at the end
        else:
            steps.append({"id": event.token_id, "t": event.text, "p": round(event.prob, 4),
                          "alt": [[token, round(prob, 4)] for token, prob in event.top_alternatives]})
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


def _settings() -> dict[str, Any]:
    """The sidebar's settings as a conversation remembers them."""
    return {name: st.session_state.get(name) for name in sampling.SETTINGS}


def _system() -> str:
    return (st.session_state.get("system_prompt") or "").strip()


def _prompt(model: Any, history: list[dict[str, str]], system: str,
            params: SamplingParams) -> tuple[list[int], SamplingParams]:
    """The prompt's ids (oldest turns dropped to fit) and the parameters, with the answer's length bounded by
    what the context has left (a small model's window is not wasted on a refusal)."""
    tokenizer, context = model.tokenizer, model.context_length
    messages = with_system(history, system)
    try:
        turn = chat_turn(tokenizer, messages, budget=context - params.max_new_tokens)
    except ContextOverflow:
        try:
            turn = chat_turn(tokenizer, messages, budget=context - 1)
        except ContextOverflow:
            raise ContextOverflow(f"the message does not fit {model.info.name}'s context of {context} tokens "
                                  "(with the system prompt)",
                                  "send a shorter message, or pick a model with a larger context") from None
    if context - len(turn.ids) < params.max_new_tokens:
        params = params.updated(max_new_tokens=context - len(turn.ids))
    return turn.ids, params


def _notices() -> list[str]:
    """Notices for the next run of this session: a plain list, so an interrupted run can still add to it."""
    return st.session_state.setdefault("_chat_notices", [])


def _stop_clicked() -> None:
    if STOPPED_NOTICE not in _notices():
        _notices().append(STOPPED_NOTICE)


def _answer(conversation_id: int, history: list[dict[str, str]], params: SamplingParams, system: str,
            parent: int | None, prompt: tuple[list[int], SamplingParams] | None = None) -> bool:
    """Stream the assistant's answer under `parent` and store it; a Stop click (a rerun) stores what was said
    so far. False when nothing could be answered (the error is shown)."""
    with st.chat_message("assistant"):
        try:
            remote = common.remote_model()
        except PlaygroundError as exc:
            common.show_error(exc)
            return False
        if remote is not None:
            return _answer_remote(remote, conversation_id, history, params, system, parent)
        try:
            model = common.model()
            ids, params = prompt or _prompt(model, history, system, params)
            generation = Generation(model, ids, params)
        except PlaygroundError as exc:
            common.show_error(exc)
            return False
        parts: list[str] = []
        steps: list[dict[str, Any]] = []
        # Read now: once a click stops this run, touching st.session_state raises again.
        settings, notices = _settings(), _notices()
        status = st.empty()
        status.caption(":material/hourglass_top: generating… (Stop keeps what is written so far)")
        start = time.perf_counter()
        with _turn_lock():
            try:
                st.write_stream(_deltas(generation, parts, steps))
            finally:
                # Runs on a Stop click too: Streamlit interrupts this run with an exception at its next call.
                meta = _outcome(generation, parts, time.perf_counter() - start, model.info.name)
                meta["prompt_tokens"] = len(ids)
                meta["steps"] = [{**s, "alt": [[model.tokenizer.token_text(t), p] for t, p in s["alt"]]}
                                 for s in steps]
                if not generation.results:
                    notices.append(STOPPED_NOTICE)
                saved = store.add(conversation_id, "assistant", meta.pop("text"), meta, model=model.info.name,
                                  system=system, parent=parent, settings=settings) if parts else None
        status.caption(_stats(meta))
    return saved is not None


def _answer_remote(remote: Any, conversation_id: int, history: list[dict[str, str]], params: SamplingParams,
                   system: str, parent: int | None) -> bool:
    """The same turn through an OpenAI-compatible provider (`serve.client`): streamed, stored, measured."""
    stream = remote.stream(with_system(history, system), params)
    parts: list[str] = []
    settings, notices = _settings(), _notices()  # see `_answer`
    status = st.empty()
    status.caption(":material/hourglass_top: generating… (Stop keeps what is written so far)")
    failed = False
    with _turn_lock():
        try:
            for_display = _kept(stream, parts)
            st.write_stream(for_display)
        except PlaygroundError as exc:
            failed = True
            common.show_error(exc)
        finally:
            reply = stream.reply
            seconds = reply.total_ms / 1000 if reply.total_ms else 0.0
            meta = {"tokens": reply.completion_tokens, "finish_reason": reply.finish_reason or "stopped",
                    "tokens_per_s": round(reply.completion_tokens / seconds, 2) if seconds else 0.0,
                    "seed": params.seed, "model": remote.label}
            if reply.usage:
                meta["prompt_tokens"] = reply.usage.get("prompt_tokens")
            if not failed and reply.finish_reason is None:
                notices.append(STOPPED_NOTICE)
            saved = store.add(conversation_id, "assistant", "".join(parts).strip(), meta, model=remote.label,
                              system=system, parent=parent, settings=settings) if parts else None
    status.caption(_stats(meta))
    return saved is not None


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


# --- the conversation shown ------------------------------------------------------------------------------------

def _go_to(conversation_id: int, message_id: int) -> None:
    store.select(conversation_id, message_id)


def _siblings(conversation_id: int, message_id: int) -> None:
    """"‹ 2 / 3 ›" under a message that has alternatives (regenerated answers, edited questions)."""
    ids = store.siblings(message_id)
    if len(ids) < 2:
        return
    at = ids.index(message_id)
    with st.container(horizontal=True, key=f"siblings_{message_id}"):
        st.button("", icon=":material/chevron_left:", key=f"prev_{message_id}", disabled=at == 0,
                  on_click=_go_to, args=(conversation_id, ids[at - 1]), help="the previous alternative")
        st.caption(f"{at + 1} / {len(ids)}")
        st.button("", icon=":material/chevron_right:", key=f"next_{message_id}", disabled=at == len(ids) - 1,
                  on_click=_go_to, args=(conversation_id, ids[min(at + 1, len(ids) - 1)]), help="the next alternative")


def _show(conversation_id: int | None, messages: list[Message]) -> None:
    for message in messages:
        with st.chat_message(message.role):
            st.markdown(message.content)
            if message.role == "assistant" and message.meta:
                st.caption(_stats(message.meta))
            if conversation_id is not None:
                _siblings(conversation_id, message.id)


def _gauge(slot: Any, messages: list[Message]) -> None:
    """How full the context is: the prompt the next turn would send, plus the room kept for the answer."""
    if st.session_state.get("model_name") == common.PROVIDER:
        return
    try:
        model = common.model()
    except PlaygroundError:
        return
    tokenizer, context = model.tokenizer, model.context_length
    history = [m.as_chat() for m in messages if m.role != "system"]
    prompt_tokens = len(chat_turn(tokenizer, history or [{"role": "user", "content": ""}], system=_system()).ids)
    reserved = int(st.session_state.get("max_new_tokens") or 0)
    used = prompt_tokens + reserved
    note = " — the oldest turns will be left out" if used > context else ""
    slot.progress(min(1.0, used / context),
                  text=f"Context: {prompt_tokens} prompt tokens + {reserved} for the answer / {context}{note}")


# --- sidebar: conversations ----------------------------------------------------------------------------------

def _set_error(exc: PlaygroundError) -> None:
    st.session_state["chat_error"] = {"message": exc.message, "fix": exc.fix}


def _new_chat() -> None:
    st.session_state["conversation_id"] = None
    # Set, not removed: a removed widget value is not sent to the browser, which would keep the old tick and
    # send it back with the next click (the old conversation reopened, the next message appended to it).
    st.session_state["conversation_radio"] = None
    st.session_state.pop("chat_confirm", None)


def _open(conversation_id: int) -> None:
    """Open a conversation with the settings it was written with (system prompt, sampling)."""
    st.session_state["conversation_id"] = conversation_id
    st.session_state.pop("chat_confirm", None)
    try:
        conversation = store.get(conversation_id)
    except PlaygroundError as exc:
        _set_error(exc)
        return
    st.session_state["system_prompt"] = conversation.system or ""
    if conversation.settings:
        sampling.restore(conversation.settings)


def _picked() -> None:
    picked = st.session_state.get("conversation_radio")
    if picked is not None:
        _open(picked)


def _rename(conversation_id: int) -> None:
    try:
        store.rename(conversation_id, st.session_state.get("rename_title", ""))
    except PlaygroundError as exc:
        _set_error(exc)


def _flag(key: str) -> None:
    st.session_state[key] = True


def _confirm(action: str | None) -> None:
    st.session_state["chat_confirm"] = action


def _delete(conversation_id: int) -> None:
    store.delete(conversation_id)
    _new_chat()


def _clear(conversation_id: int) -> None:
    store.clear(conversation_id)
    st.session_state.pop("chat_confirm", None)


def _imported() -> None:
    upload = st.session_state.get("chat_import")
    if upload is None:
        return
    try:
        data = json.loads(upload.getvalue().decode("utf-8", errors="replace"))
    except json.JSONDecodeError as exc:
        _set_error(InputError(f"{upload.name} is not JSON ({exc})", 'give a file from "Export as JSON"'))
        return
    try:
        _open(store.import_(data))
    except PlaygroundError as exc:
        _set_error(exc)


def _when(conversation: Conversation) -> str:
    moment = datetime.datetime.fromtimestamp(conversation.updated)
    today = datetime.date.today()
    return moment.strftime("%H:%M") if moment.date() == today else moment.strftime("%d %b %Y")


def _conversations_sidebar(slot: Any, current: int | None) -> None:
    with slot:
        st.subheader("Conversations")
        st.button("New chat", icon=":material/add:", on_click=_new_chat, width="stretch")
        search = st.text_input("Search", key="chat_search", placeholder="search titles and messages",
                               label_visibility="collapsed")
        conversations = store.list(search)
        titles = {c.id: f"{c.title} · {_when(c)}" for c in conversations}
        if current in titles:
            st.session_state["conversation_radio"] = current
        else:
            st.session_state["conversation_radio"] = None
        if not conversations:
            st.caption("Nothing matches the search." if search.strip()
                       else "No conversations yet: send a message to start one.")
        else:
            st.radio("Open", list(titles), key="conversation_radio", format_func=titles.__getitem__,
                     on_change=_picked, index=None, label_visibility="collapsed")
        with st.expander("Import a conversation"):
            st.file_uploader("An exported conversation (JSON)", type=["json"], key="chat_import",
                             on_change=_imported)
        if current is None or current not in {c.id for c in store.list()}:
            return
        with st.expander("Rename, delete, export"):
            st.text_input("Title", value=store.get(current).title, key="rename_title")
            st.button("Rename", on_click=_rename, args=(current,))
            if st.session_state.get("chat_confirm") == "delete":
                st.warning("Delete this conversation and all its messages?")
                with st.container(horizontal=True):
                    st.button("Yes, delete", on_click=_delete, args=(current,), type="primary")
                    st.button("Cancel", key="cancel_delete", on_click=_confirm, args=(None,))
            else:
                st.button("Delete", on_click=_confirm, args=("delete",), type="primary")
            st.download_button("Export as JSON", json.dumps(store.export(current), ensure_ascii=False, indent=2),
                               file_name=f"conversation-{current}.json", mime="application/json")


# --- the page ------------------------------------------------------------------------------------------------

def _answer_limit() -> int:
    """"Max new tokens" bounded by the picked model's context (a provider's is not known here)."""
    if st.session_state.get("model_name") == common.PROVIDER:
        return sampling.answer_limit(None)
    try:
        return sampling.answer_limit(common.model().context_length)
    except PlaygroundError:
        return sampling.answer_limit(None)


# Drawn last (after a new conversation may have been created) but shown above the generation settings.
conversations_slot = st.sidebar.container()
sampling.sidebar(_answer_limit())
conversation_id: int | None = st.session_state.get("conversation_id")
if conversation_id is not None and conversation_id not in {c.id for c in store.list()}:
    conversation_id = st.session_state["conversation_id"] = None

st.title("Chat")
# Known before anything is drawn (the message box's value and Regenerate's flag are set before the run), so Stop
# is drawn once: live in a run that will write an answer, disabled otherwise.
regenerate = bool(st.session_state.pop("chat_regenerate", False))
generating = regenerate or bool((st.session_state.get("chat_prompt") or "").strip())
with st.container(horizontal=True):
    st.button("Stop", icon=":material/stop_circle:", key="chat_stop", disabled=not generating, on_click=_stop_clicked,
              help="stop the answer being written (what was said so far is kept)" if generating
              else "Stop works while an answer is being written")
    st.button("Regenerate", icon=":material/refresh:", on_click=_flag, args=("chat_regenerate",),
              help="answer the last message again (the earlier answer stays as an alternative)")
    st.button("Clear", icon=":material/delete_sweep:", help="remove every message of this conversation",
              on_click=_confirm, args=("clear",))
if st.session_state.get("chat_confirm") == "clear" and conversation_id is not None:
    st.warning("Remove every message of this conversation?")
    with st.container(horizontal=True):
        st.button("Yes, clear", on_click=_clear, args=(conversation_id,), type="primary")
        st.button("Cancel", key="cancel_clear", on_click=_confirm, args=(None,))

if _turn_lock().acquire(timeout=30):  # an interrupted answer of this session is stored first
    _turn_lock().release()
if error := st.session_state.pop("chat_error", None):
    common.show_error(PlaygroundError(error["message"], error["fix"]))
for notice in dict.fromkeys(_notices()):
    st.info(notice, icon=":material/info:")
_notices().clear()
messages = store.messages(conversation_id) if conversation_id is not None else []
if conversation_id is not None and (saved_system := store.get(conversation_id).system):
    st.caption(f"System prompt: {saved_system}")
pending_answer = False
parent: int | None = None
if regenerate:
    if messages and messages[-1].role == "assistant":
        messages = messages[:-1]  # the new answer becomes a sibling of the last one
    pending_answer = bool(messages) and messages[-1].role == "user"
    if pending_answer:
        parent = messages[-1].id
    else:
        common.show_error(InputError("there is no message to answer again", "send a message first"))
_show(conversation_id, messages)

gauge_slot = st.empty()
prompt = st.chat_input("Ask something", key="chat_prompt")
prepared: tuple[list[int], SamplingParams] | None = None
if prompt is not None:
    if not prompt.strip():
        common.show_error(InputError("the message is empty", "type something before sending"))
    else:
        history = [m.as_chat() for m in messages if m.role != "system"] + [{"role": "user", "content": prompt}]
        try:  # a message the model cannot take is refused before it is saved
            if common.remote_model() is None:
                prepared = _prompt(common.model(), history, _system(), sampling.params())
        except PlaygroundError as exc:
            common.show_error(exc)
            st.caption("Your message was not saved.")
        else:
            if conversation_id is None:
                conversation_id = store.create(title_from(prompt), common.model_spec()[0], _system(), _settings())
                st.session_state["conversation_id"] = conversation_id
            parent = store.add(conversation_id, "user", prompt)
            messages = store.messages(conversation_id)
            _show(None, messages[-1:])
            pending_answer = True

if pending_answer and conversation_id is not None:
    try:
        params = sampling.params()
    except PlaygroundError as exc:
        common.show_error(exc)
    else:
        history = [m.as_chat() for m in messages if m.role != "system"]
        answered = _answer(conversation_id, history, params, _system(), parent, prepared)
        if answered:
            st.rerun()  # drawn again from the database: Stop disabled, the answer's alternatives, the gauge
        if prompt is not None:
            st.caption("Your message was not saved.")
        if prompt is not None and len(history) == 1:
            store.delete(conversation_id)  # a first message the model or provider refused: nothing is kept
            conversation_id = st.session_state["conversation_id"] = None
        elif prompt is not None and parent is not None:
            store.delete_message(parent)
        messages = store.messages(conversation_id) if conversation_id is not None else []

_gauge(gauge_slot, messages)
_conversations_sidebar(conversations_slot, st.session_state.get("conversation_id"))
