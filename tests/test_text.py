"""Streaming text: the incremental detokenizer over the real bundled tokenizer, and stop strings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_playground.generate.text import REPLACEMENT, IncrementalDetokenizer, StopMatcher
from llm_playground.tokenizer.hf import HFTokenizer

TEXTS = ["🦙🔥 done", "Ça coûte déjà 5 €, naïve façade", "日本語のテキスト", "plain ascii, nothing odd",
         "mixed: ✨ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🇫🇷 and e\u0301 (combining)"]


def stream(tokenizer: HFTokenizer, ids: list[int], prompt_ids: list[int] | None = None) -> list[str]:
    detok = IncrementalDetokenizer(tokenizer, prompt_ids or [])
    return [*(detok.push(i) for i in ids), detok.flush()]


@pytest.mark.parametrize("text", TEXTS)
def test_deltas_concatenate_to_the_decoded_text(smollm2_tokenizer: HFTokenizer, text: str) -> None:
    ids = smollm2_tokenizer.encode(text)
    deltas = stream(smollm2_tokenizer, ids)
    assert "".join(deltas) == smollm2_tokenizer.decode(ids) == text
    assert not any(REPLACEMENT in d for d in deltas)


@pytest.mark.parametrize("text", TEXTS[:3])
def test_multibyte_characters_really_are_split(smollm2_tokenizer: HFTokenizer, text: str) -> None:
    """What makes the test above meaningful: decoding token by token would show U+FFFD."""
    ids = smollm2_tokenizer.encode(text)
    assert any(REPLACEMENT in smollm2_tokenizer.decode([i]) for i in ids)


def test_partial_character_is_held_back_until_complete(smollm2_tokenizer: HFTokenizer) -> None:
    ids = smollm2_tokenizer.encode("🦙")
    assert len(ids) > 1
    deltas = stream(smollm2_tokenizer, ids)
    assert deltas[:-2] == [""] * (len(ids) - 1) and deltas[-2] == "🦙" and deltas[-1] == ""


@pytest.mark.parametrize("prompt", ["Tell me: ", "Ends in an emoji 🦙", "日本", "x"])
@pytest.mark.parametrize("text", TEXTS[:3])
def test_deltas_after_a_prompt_are_the_new_text_only(smollm2_tokenizer: HFTokenizer, prompt: str,
                                                     text: str) -> None:
    prompt_ids, ids = smollm2_tokenizer.encode(prompt), smollm2_tokenizer.encode(text)
    deltas = stream(smollm2_tokenizer, ids, prompt_ids)
    assert "".join(deltas) == smollm2_tokenizer.decode(prompt_ids + ids)[len(prompt):] == text
    assert not any(REPLACEMENT in d for d in deltas)


def test_an_incomplete_character_at_the_end_is_flushed_as_replacement(smollm2_tokenizer: HFTokenizer) -> None:
    ids = smollm2_tokenizer.encode("ok 🦙")[:-1]  # cut inside the emoji's bytes
    deltas = stream(smollm2_tokenizer, ids)
    assert "".join(deltas) == smollm2_tokenizer.decode(ids)
    assert REPLACEMENT not in "".join(deltas[:-1]) and deltas[-1].endswith(REPLACEMENT)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab ,.éàçü€日本語の🦙🔥✨\n")), max_size=40))
def test_any_text_streams_back_exactly(smollm2_tokenizer: HFTokenizer, text: str) -> None:
    ids = smollm2_tokenizer.encode(text)
    deltas = stream(smollm2_tokenizer, ids)
    assert "".join(deltas) == text
    assert not any(REPLACEMENT in d for d in deltas)


def run_stops(stops: list[str], deltas: list[str]) -> tuple[list[str], bool]:
    matcher, emitted = StopMatcher(stops), []
    for delta in deltas:
        text, stopped = matcher.push(delta)
        emitted.append(text)
        if stopped:
            return emitted, True
    return [*emitted, matcher.flush()], False


def test_stop_string_split_across_real_token_deltas(smollm2_tokenizer: HFTokenizer) -> None:
    text = "Ça coûte déjà 5 € ###END### and more"
    ids = smollm2_tokenizer.encode(text)
    detok = IncrementalDetokenizer(smollm2_tokenizer, [])
    deltas = [detok.push(i) for i in ids]
    assert "###END###" not in deltas  # really split over several tokens
    emitted, stopped = run_stops(["###END###"], deltas)
    assert stopped
    assert "".join(emitted) == "Ça coûte déjà 5 € "
    assert not any("#" in e for e in emitted)


def test_near_miss_prefix_is_held_back_then_released() -> None:
    matcher = StopMatcher(["</answer>"])
    assert matcher.push("The answer <") == ("The answer ", False)
    assert matcher.push("/ans") == ("", False)
    assert matcher.push("wer is") == ("</answer is", False)
    assert matcher.push(" 42 </") == (" 42 ", False)
    assert matcher.flush() == "</"


def test_stop_found_inside_a_single_delta_drops_the_rest() -> None:
    assert StopMatcher(["STOP"]).push("before STOP after") == ("before ", True)


def test_earliest_stop_string_wins() -> None:
    emitted, stopped = run_stops(["world", "lo w", "o"], ["hel", "lo wor", "ld"])
    assert stopped and "".join(emitted) == "hel"
    emitted, stopped = run_stops(["\n\n", "User:"], ["Sure.", " User", ":\n\nok"])
    assert stopped and "".join(emitted) == "Sure. "


def test_without_stops_everything_passes_through() -> None:
    matcher = StopMatcher([])
    assert matcher.push("abc") == ("abc", False)
    assert matcher.flush() == ""


def test_a_stop_that_completes_first_wins_over_a_longer_one_starting_earlier() -> None:
    """Streaming cannot wait: "c" completes before "abcd" could, so the split of the text matters here."""
    assert run_stops(["abcd", "c"], ["ab", "c", "d"]) == (["", "ab"], True)
    assert run_stops(["abcd", "c"], ["abcd"]) == ([""], True)


@st.composite
def split_text(draw: st.DrawFn) -> tuple[str, list[str], list[str]]:
    alphabet = st.sampled_from(list("ab<>/ é🦙"))
    text = draw(st.text(alphabet=alphabet, max_size=30))
    stops = draw(st.lists(st.text(alphabet=alphabet, min_size=1, max_size=4), min_size=1, max_size=3))
    # No stop inside another: then the stop that completes first is also the one that starts first.
    stops = [s for s in stops if not any(s != o and s in o for o in stops)]
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=8)))
    deltas = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    return text, stops, deltas


@settings(max_examples=300, deadline=None)
@given(split_text())
def test_any_split_emits_the_text_before_the_first_stop(case: tuple[str, list[str], list[str]]) -> None:
    text, stops, deltas = case
    emitted, stopped = run_stops(stops, deltas)
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    assert stopped == bool(hits)
    assert "".join(emitted) == (text[: min(hits)] if hits else text)
