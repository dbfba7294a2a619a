"""Side by side: one prompt, two models or two settings, streamed in two columns; saved as a conversation."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from llm_playground.conversations import title_from
from llm_playground.errors import InputError, PlaygroundError
from llm_playground.generate.chat import ChatStream, LocalChatModel, with_system
from llm_playground.ui import common, sampling

SIDES = ("a", "b")
store = common.conversation_store()


def _choices() -> list[str]:
    return [c for c in common.model_choices() if c != common.OTHER]


def _label(choice: str) -> str:
    return "the provider set in the sidebar" if choice == common.PROVIDER else common.model_label(choice)


def _chat_model(choice: str) -> Any:
    if choice == common.PROVIDER:
        return common.remote_model(picked=True)
    return LocalChatModel(common.load(choice))


def _run(prompt: str) -> dict[str, Any]:
    """Both answers, streamed in turn one delta at a time, so the two columns grow together."""
    system = (st.session_state.get("system_prompt") or "").strip()
    messages = with_system([{"role": "user", "content": prompt}], system)
    sides: list[dict[str, Any]] = []
    for side, column in zip(SIDES, st.columns(2), strict=True):
        choice = st.session_state[f"cmp_model_{side}"]
        params = sampling.params().updated(temperature=st.session_state[f"cmp_temperature_{side}"])
        model = _chat_model(choice)
        stream: ChatStream = model.stream(messages, params)
        with column:
            st.markdown(f"**{_label(choice)}** · temperature {params.temperature:g}")
            sides.append({"choice": choice, "label": model.label, "temperature": params.temperature,
                          "stream": iter(stream), "reply": stream.reply, "slot": st.empty(), "parts": [],
                          "busy_s": 0.0, "done": False})
    while not all(s["done"] for s in sides):
        for s in sides:
            if s["done"]:
                continue
            start = time.perf_counter()
            try:
                delta = next(s["stream"])
            except StopIteration:
                s["done"] = True
                delta = ""
            s["busy_s"] += time.perf_counter() - start  # this side's own time, not the other's
            if delta:
                s["parts"].append(delta)
                s["slot"].markdown("".join(s["parts"]))
    return {"prompt": prompt, "system": system, "sides": [_summary(s) for s in sides]}


def _summary(side: dict[str, Any]) -> dict[str, Any]:
    reply = side["reply"]
    tokens = reply.completion_tokens
    return {"choice": side["choice"], "model": side["label"], "temperature": side["temperature"],
            "text": (reply.text or "".join(side["parts"])).strip(), "tokens": tokens,
            "prompt_tokens": (reply.usage or {}).get("prompt_tokens"), "finish_reason": reply.finish_reason,
            "tokens_per_s": round(tokens / side["busy_s"], 2) if side["busy_s"] else 0.0,
            "seed": reply.result.seed if reply.result is not None else None}


def _stats(side: dict[str, Any]) -> str:
    return (f"{side['tokens']} tokens · {side['tokens_per_s']:.1f} tokens/s · {side['finish_reason']}"
            + (f" · seed {side['seed']}" if side.get("seed") is not None else ""))


def _save() -> None:
    result = st.session_state.get("cmp_result")
    if not result:
        return
    conversation = store.create(title_from(result["prompt"]), None, result["system"], {})
    question = store.add(conversation, "user", result["prompt"])
    for side in result["sides"]:  # two answers to one question: siblings in the conversation's tree
        meta = {key: side[key] for key in ("tokens", "tokens_per_s", "finish_reason", "seed", "model",
                                           "prompt_tokens", "temperature")}
        store.add(conversation, "assistant", side["text"], meta, model=side["model"], parent=question)
    st.session_state["cmp_saved"] = conversation


st.title("Side by side")
st.caption("One prompt, two models or two settings: a base model and a trained run, temperature 0 and 1, a local "
           "model and a provider. The other settings (top-p, penalties, max new tokens, seed, system prompt) come "
           "from the sidebar.")
sampling.sidebar()
choices = _choices()
for side, default in zip(SIDES, (0.0, 1.0), strict=True):
    if st.session_state.get(f"cmp_model_{side}") not in choices:
        st.session_state[f"cmp_model_{side}"] = choices[0]
    st.session_state.setdefault(f"cmp_temperature_{side}", default)
with st.container(horizontal=True):
    for side in SIDES:
        with st.container(border=True):
            st.selectbox(f"Model {side.upper()}", choices, key=f"cmp_model_{side}", format_func=_label)
            st.slider(f"Temperature {side.upper()}", 0.0, 2.0, step=0.05, key=f"cmp_temperature_{side}")

prompt = st.chat_input("One prompt for both", key="cmp_prompt")
if prompt is not None:
    st.session_state.pop("cmp_saved", None)
    try:
        if not prompt.strip():
            raise InputError("the prompt is empty", "type something before sending")
        st.markdown(f"**Prompt:** {prompt}")
        st.session_state["cmp_result"] = _run(prompt)
        st.rerun()
    except PlaygroundError as exc:
        common.show_error(exc)
elif result := st.session_state.get("cmp_result"):
    st.markdown(f"**Prompt:** {result['prompt']}")
    for side, column in zip(result["sides"], st.columns(2), strict=True):
        with column:
            st.markdown(f"**{_label(side['choice'])}** · temperature {side['temperature']:g}")
            st.markdown(side["text"])
            st.caption(_stats(side))
    if saved := st.session_state.get("cmp_saved"):
        st.success(f"Saved as conversation {saved}: open it on the Chat page (the two answers are its alternatives).")
    else:
        st.button("Save as a conversation", icon=":material/save:", on_click=_save)
