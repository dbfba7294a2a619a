"""generate/chat.py: the one chat turn (system prompt, history fitted to a budget, template, ids) and the one
`stream(messages, params)` of local and remote chat models."""

from __future__ import annotations

import pytest

from llm_playground.errors import ContextOverflow
from llm_playground.generate import SamplingParams
from llm_playground.generate.chat import ChatModel, LocalChatModel, chat_turn, render
from llm_playground.serve.client import ProviderClient, RemoteChatModel

HISTORY = [
    {"role": "user", "content": "first question " * 20},
    {"role": "assistant", "content": "first answer " * 20},
    {"role": "user", "content": "second question " * 20},
    {"role": "assistant", "content": "second answer " * 20},
    {"role": "user", "content": "the last question"},
]


def test_turn_without_a_budget_keeps_everything(smollm2_tokenizer):
    turn = chat_turn(smollm2_tokenizer, HISTORY, system="Be brief.")
    assert turn.messages[0] == {"role": "system", "content": "Be brief."} and turn.messages[1:] == HISTORY
    assert turn.text == render(smollm2_tokenizer, turn.messages) and "Be brief." in turn.text
    assert turn.ids == smollm2_tokenizer.encode(turn.text) and turn.dropped == 0


def test_budget_drops_the_oldest_turns_never_the_system_prompt(smollm2_tokenizer):
    whole = len(chat_turn(smollm2_tokenizer, HISTORY, system="Be brief.").ids)
    turn = chat_turn(smollm2_tokenizer, HISTORY, system="Be brief.", budget=whole - 1)
    # The first user turn goes with its answer: the history starts with a user turn again.
    assert turn.messages == [{"role": "system", "content": "Be brief."}, *HISTORY[2:]]
    assert turn.dropped == 2 and len(turn.ids) <= whole - 1
    last_only = chat_turn(smollm2_tokenizer, HISTORY, system="Be brief.", budget=60)
    assert [m["content"] for m in last_only.messages] == ["Be brief.", "the last question"]
    assert last_only.dropped == 4


def test_a_last_message_that_cannot_fit_is_refused(smollm2_tokenizer):
    with pytest.raises(ContextOverflow) as caught:
        chat_turn(smollm2_tokenizer, HISTORY, system="Be brief.", budget=10)
    assert "last message" in caught.value.message and "max_new_tokens" in caught.value.fix


def test_local_and_remote_models_are_chat_models(smollm2):
    with ProviderClient("http://127.0.0.1:9") as client:  # nothing is sent until a stream is read
        remote = RemoteChatModel(client, "some-model")
        assert isinstance(remote, ChatModel) and remote.label.startswith("some-model at http://127.0.0.1:9")
    local = LocalChatModel(smollm2)
    assert isinstance(local, ChatModel) and local.label == smollm2.info.name
    assert not isinstance(smollm2, ChatModel)


def test_local_stream_yields_deltas_and_leaves_the_reply(smollm2):
    chat = LocalChatModel(smollm2)
    params = SamplingParams(temperature=0, max_new_tokens=12)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    stream = chat.stream(messages, params)
    deltas = list(stream)
    reply = stream.reply
    assert reply.result is not None and reply.text == reply.result.text == "".join(deltas)
    assert reply.finish_reason == "eos" and "Paris" in reply.text
    assert reply.completion_tokens == reply.result.completion_tokens
    assert reply.usage["prompt_tokens"] == len(chat.turn(messages, params).ids)
    assert 0 < reply.ttft_ms <= reply.total_ms and stream.generation is not None
    # Stopped after two deltas (a front end's Stop): the reply keeps what was said, with no result.
    stopped = chat.stream(messages, params)
    first = [next(iter(stopped)), next(iter(stopped))]
    stopped._deltas.close()
    assert stopped.reply.text == "".join(first) == "".join(deltas[:2]) and stopped.reply.result is None


def test_local_stream_refuses_a_prompt_with_no_room_to_answer(smollm2):
    params = SamplingParams(max_new_tokens=smollm2.context_length - 5)
    with pytest.raises(ContextOverflow):
        LocalChatModel(smollm2).stream([{"role": "user", "content": "hello there, how are you?"}], params)
