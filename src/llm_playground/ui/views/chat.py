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
from llm_playground.serve.providers import format_cost
from llm_playground.ui import common, sampling, token_view

store = common.conversation_store()
STOPPED_NOTICE = ("The answer was stopped (by Stop, another click or a page switch): what it had written so far "
                  "is kept. Regenerate answers again.")


def _stats(meta: dict[str, Any]) -> str:
    if not meta:
        return ""
    cost = f"~{format_cost(meta['cost'])}" if meta.get("cost") is not None else ""
    prompt_tokens = f"{meta['prompt_tokens']} prompt tokens" if meta.get("prompt_tokens") else ""
    parts = [prompt_tokens, f"{meta.get('tokens', 0)} tokens", cost, f"{meta.get('tokens_per_s', 0):.1f} tokens/s",
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
            parent: int | None, prompt: tuple[list[int], SamplingParams] | None = None,
            prefix: list[dict[str, Any]] | None = None) -> bool:
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
        prefix = prefix or []
        try:
            model = common.model()
            ids, params = prompt or _prompt(model, history, system, params)
            # A branch from a token: the answer so far up to it and the token chosen instead, then the model goes on.
            ids = ids + [step["id"] for step in prefix]
            room = model.context_length - len(ids)
            if room < 1:
                raise ContextOverflow("no room is left in the context after that token",
                                      "pick an earlier token, or a model with a larger context")
            params = params.updated(max_new_tokens=min(params.max_new_tokens, room))
            generation = Generation(model, ids, params)
        except PlaygroundError as exc:
            common.show_error(exc)
            return False
        head = model.tokenizer.decode([step["id"] for step in prefix]) if prefix else ""
        parts: list[str] = [head] if head else []
        steps: list[dict[str, Any]] = []
        # Read now: once a click stops this run, touching st.session_state raises again.
        settings, notices = _settings(), _notices()
        status = st.empty()
        status.caption(":material/hourglass_top: generating… (Stop keeps what is written so far)")
        start = time.perf_counter()
        with _turn_lock():
            try:
                st.write_stream(_with_head(head, _deltas(generation, parts, steps)))
            finally:
                # Runs on a Stop click too: Streamlit interrupts this run with an exception at its next call.
                meta = _outcome(generation, parts, time.perf_counter() - start, model.info.name)
                if generation.results:
                    meta["text"] = (head + generation.results[0].text).strip()
                meta["tokens"] = len(prefix) + (generation.results[0].completion_tokens if generation.results
                                                else len(steps))
                meta["prompt_tokens"] = len(ids) - len(prefix)
                meta["steps"] = prefix + [
                    {**s, "alt": [[t, model.tokenizer.decode([t]), p] for t, p in s["alt"]]} for s in steps]
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
    table = common.prices()
    status = st.empty()
    status.caption(":material/hourglass_top: generating… (Stop keeps what is written so far)")
    failed = False
    with _turn_lock():
        try:
            st.write_stream(_kept(stream, parts))
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
            meta["cost"] = table.cost(remote.model, meta.get("prompt_tokens") or 0, reply.completion_tokens)
            if not failed and reply.finish_reason is None:
                notices.append(STOPPED_NOTICE)
            saved = store.add(conversation_id, "assistant", "".join(parts).strip(), meta, model=remote.label,
                              system=system, parent=parent, settings=settings) if parts else None
    status.caption(_stats(meta))
    return saved is not None


def _with_head(head: str, deltas: Iterator[str]) -> Iterator[str]:
    if head:
        yield head
    yield from deltas


def _kept(deltas: Iterator[str], parts: list[str]) -> Iterator[str]:
    for delta in deltas:
        parts.append(delta)
        yield delta


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


def _edited(message_id: int) -> None:
    st.session_state["chat_edit"] = {"message": message_id, "text": st.session_state.get(f"edit_text_{message_id}", "")}


def _branch(message_id: int) -> None:
    st.session_state["chat_branch"] = {"message": message_id, "index": st.session_state.get(f"tv_pos_{message_id}"),
                                       "token": st.session_state.get(f"tv_alt_{message_id}")}


def _token_view(message: Message) -> None:
    """The answer's tokens coloured by probability; pick one and an alternative to branch from there."""
    steps = message.meta["steps"]
    st.markdown(token_view.token_html(steps), unsafe_allow_html=True)
    st.caption("Colour: the probability the model gave each token (green likely, red unlikely); rest the pointer on "
               "a token to see its top alternatives.")
    with st.expander("Continue from here with another token"):
        index = st.selectbox("Token", range(len(steps)), key=f"tv_pos_{message.id}",
                             format_func=lambda i: token_view.label(i, steps[i]))
        alternatives = {alt[0]: alt for alt in steps[index].get("alt", [])}
        if not alternatives:
            st.caption("No alternatives were recorded for this token.")
            return
        st.radio("Instead", list(alternatives), key=f"tv_alt_{message.id}", horizontal=True,
                 format_func=lambda t: f"{alternatives[t][1]!r} {alternatives[t][2]:.3f}")
        st.button("Continue from here with this token instead", key=f"tv_go_{message.id}", on_click=_branch,
                  args=(message.id,), icon=":material/call_split:",
                  help="a new answer, as an alternative of this one: the same tokens up to here, then this one")


def _show(conversation_id: int | None, messages: list[Message]) -> None:
    for message in messages:
        with st.chat_message(message.role):
            if message.role == "assistant" and message.meta.get("steps") and st.session_state.get("token_view"):
                _token_view(message)
            else:
                st.markdown(message.content)
            if message.role == "assistant" and message.meta:
                st.caption(_stats(message.meta))
            if message.role == "user" and conversation_id is not None:
                with st.popover("Edit", icon=":material/edit:", help="ask this differently: a new branch"):
                    st.text_area("Question", value=message.content, key=f"edit_text_{message.id}")
                    st.button("Send the edited question", key=f"edit_go_{message.id}", on_click=_edited,
                              args=(message.id,))
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
branch = st.session_state.pop("chat_branch", None)
edit = st.session_state.pop("chat_edit", None)
generating = regenerate or bool(branch) or bool(edit) or bool((st.session_state.get("chat_prompt") or "").strip())
with st.container(horizontal=True):
    st.button("Stop", icon=":material/stop_circle:", key="chat_stop", disabled=not generating, on_click=_stop_clicked,
              help="stop the answer being written (what was said so far is kept)" if generating
              else "Stop works while an answer is being written")
    st.button("Regenerate", icon=":material/refresh:", on_click=_flag, args=("chat_regenerate",),
              help="answer the last message again (the earlier answer stays as an alternative)")
    st.button("Clear", icon=":material/delete_sweep:", help="remove every message of this conversation",
              on_click=_confirm, args=("clear",))
    st.toggle("Token view", key="token_view", help="answers as their tokens, coloured by probability")
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
costs = [m.meta["cost"] for m in messages if m.meta.get("cost") is not None]
if costs:
    st.caption(f"Estimated cost of this conversation: ~{format_cost(sum(costs))} ({common.prices().source})")
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
prefix: list[dict[str, Any]] | None = None
if branch and conversation_id is not None:
    at = next((i for i, m in enumerate(messages) if m.id == branch["message"]), None)
    steps = messages[at].meta.get("steps", []) if at is not None else []
    index = branch["index"] if isinstance(branch["index"], int) and branch["index"] < len(steps) else None
    options = steps[index].get("alt", []) if index is not None else []
    chosen = next((alt for alt in options if alt[0] == branch["token"]), None)
    if at is None or index is None or chosen is None:
        common.show_error(InputError("that token is no longer shown", "pick a token of an answer on the page"))
    else:
        prefix = [*steps[:index], {"id": chosen[0], "t": chosen[1], "p": chosen[2], "alt": steps[index]["alt"],
                                   "forced": True}]
        parent, messages, pending_answer = messages[at].parent_id, messages[:at], True
if edit and conversation_id is not None:
    at = next((i for i, m in enumerate(messages) if m.id == edit["message"]), None)
    if at is None or not edit["text"].strip():
        common.show_error(InputError("the edited message is empty or gone", "type the new question"))
    else:  # the edited question becomes an alternative of the old one, and is answered
        parent = store.add(conversation_id, "user", edit["text"].strip(), parent=messages[at].parent_id)
        messages, pending_answer = store.messages(conversation_id), True
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
        answered = _answer(conversation_id, history, params, _system(), parent, prepared, prefix)
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
