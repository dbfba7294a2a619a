"""Sampler maths on hand-made logits, the documented order of the chain, and properties on random logits."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from llm_playground.generate import processors as P
from llm_playground.generate.params import SamplingParams

INF = np.inf


def f32(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits() -> None:
    out = P.RepetitionPenalty(2.0)(ids(0, 1, 0, 3), f32(2.0, -2.0, 1.0, 0.0, 0.5))
    np.testing.assert_array_equal(out, f32(1.0, -4.0, 1.0, 0.0, 0.5))


def test_repetition_penalty_below_one_encourages_repeats() -> None:
    out = P.RepetitionPenalty(0.5)(ids(0, 1), f32(2.0, -2.0, 1.0))
    np.testing.assert_array_equal(out, f32(4.0, -1.0, 1.0))


def test_frequency_presence_counts_only_generated_tokens() -> None:
    # prompt = [3, 3]; generated = [0, 0, 1]
    penalty = P.FrequencyPresencePenalty(frequency=0.5, presence=1.0, prompt_length=2)
    out = penalty(ids(3, 3, 0, 0, 1), f32(1.0, 1.0, 1.0, 1.0))
    np.testing.assert_allclose(out, f32(1.0 - (0.5 * 2 + 1.0), 1.0 - (0.5 + 1.0), 1.0, 1.0))


def test_frequency_presence_without_generated_tokens_changes_nothing() -> None:
    penalty = P.FrequencyPresencePenalty(frequency=2.0, presence=2.0, prompt_length=3)
    np.testing.assert_array_equal(penalty(ids(0, 1, 2), f32(1.0, 2.0, 3.0)), f32(1.0, 2.0, 3.0))


def test_negative_frequency_and_presence_raise_logits() -> None:
    penalty = P.FrequencyPresencePenalty(frequency=-1.0, presence=-0.5, prompt_length=0)
    np.testing.assert_allclose(penalty(ids(1, 1, 1), f32(0.0, 0.0)), f32(0.0, 3.5))


@pytest.mark.parametrize(("temperature", "expected"), [(2.0, f32(0.0, -1.5, -1.0)), (0.5, f32(0.0, -6, -4))])
def test_temperature_divides_shifted_logits(temperature: float, expected: np.ndarray) -> None:
    np.testing.assert_allclose(P.Temperature(temperature)(ids(), f32(2.0, -1.0, 0.0)), expected)


def test_temperature_changes_the_distribution_like_dividing_logits() -> None:
    logits = f32(2.0, -1.0, 0.0, 0.5)
    np.testing.assert_allclose(P.softmax(P.Temperature(0.7)(ids(), logits.copy())), P.softmax(logits / 0.7),
                               rtol=1e-5)


@pytest.mark.parametrize(("temperature", "logits"), [
    (1e-40, f32(0.0, 1.0, -1.0)), (5e-324, f32(0.0, 1.0, 0.5)), (1e-37, f32(100.0, 1.0, 0.0)),
    (0.5, f32(1.0, 3e38, -3e38)),
])
def test_tiny_temperature_or_huge_logits_do_not_overflow(temperature: float, logits: np.ndarray) -> None:
    """Found by these tests: 1/temperature or logits/temperature used to overflow to inf, then NaN."""
    top = int(np.argmax(logits))
    with np.errstate(all="raise"):
        out = P.Temperature(temperature)(ids(), logits)
    assert out[top] == 0.0 and not np.isnan(out).any()
    probs = P.softmax(out)
    assert probs[top] == 1.0


def test_top_k_keeps_the_k_highest() -> None:
    np.testing.assert_array_equal(P.TopK(2)(ids(), f32(1.0, 3.0, 2.0, 0.0)), f32(-INF, 3.0, 2.0, -INF))


def test_top_k_keeps_ties_with_the_kth() -> None:
    out = P.TopK(2)(ids(), f32(1.0, 3.0, 2.0, 2.0, 0.0))
    np.testing.assert_array_equal(out, f32(-INF, 3.0, 2.0, 2.0, -INF))


def test_top_k_larger_than_vocab_keeps_everything() -> None:
    np.testing.assert_array_equal(P.TopK(10)(ids(), f32(1.0, 2.0)), f32(1.0, 2.0))


PROBS = np.array([0.5, 0.3, 0.15, 0.05])


@pytest.mark.parametrize(("p", "kept"), [(0.05, 1), (0.45, 1), (0.75, 2), (0.81, 3), (0.96, 4), (1.0, 4)])
def test_top_p_keeps_the_smallest_set_reaching_p(p: float, kept: int) -> None:
    logits = np.log(PROBS[[2, 0, 3, 1]]).astype(np.float32)  # shuffled: order must come from the values
    out = P.TopP(p)(ids(), logits.copy())
    survivors = np.sort(np.exp(out[np.isfinite(out)]))[::-1]
    np.testing.assert_allclose(survivors, PROBS[:kept], rtol=1e-6)


def test_top_p_always_keeps_the_top_token() -> None:
    out = P.TopP(1e-9)(ids(), f32(0.0, 0.0, 5.0, 0.0))
    assert np.isfinite(out).tolist() == [False, False, True, False]


@pytest.mark.parametrize(("min_p", "kept"), [(0.5, 2), (0.25, 3), (0.59, 2), (0.61, 1), (1.0, 1)])
def test_min_p_drops_tokens_below_fraction_of_top(min_p: float, kept: int) -> None:
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05])).astype(np.float32)
    out = P.MinP(min_p)(ids(), logits)
    assert np.isfinite(out).sum() == kept
    assert np.isfinite(out[:kept]).all()


def test_softmax_sums_to_one_and_ignores_removed_tokens() -> None:
    probs = P.softmax(f32(1000.0, 999.0, -INF, -1000.0))
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    assert probs[2] == 0.0 and probs[0] > probs[1] > probs[3] >= 0.0


def test_chain_is_built_in_the_documented_order() -> None:
    params = SamplingParams.create(repetition_penalty=1.2, frequency_penalty=0.5, temperature=0.8,
                                   top_k=5, top_p=0.9, min_p=0.1)
    penalties = P.penalty_processors(params, 3)
    assert [type(p) for p in penalties] == [P.RepetitionPenalty, P.FrequencyPresencePenalty]
    scale, truncate = P.sampling_processors(params)
    assert [type(p) for p in scale] == [P.Temperature]
    assert [type(p) for p in truncate] == [P.TopK, P.TopP, P.MinP]


def test_defaults_and_greedy_build_empty_chains() -> None:
    assert P.penalty_processors(SamplingParams.create(), 0) == []
    assert P.sampling_processors(SamplingParams.create(temperature=1.0)) == ([], [])
    assert P.sampling_processors(SamplingParams.create(greedy=True, top_k=3)) == ([], [])
    assert P.sampling_processors(SamplingParams.create(temperature=0, top_p=0.5)) == ([], [])


def test_penalties_shape_what_truncation_keeps() -> None:
    """Token 0 was already said: the penalty comes first, so top-2 keeps tokens 1 and 2 instead."""
    params = SamplingParams.create(repetition_penalty=2.0, temperature=1.0, top_k=2)
    context, logits = ids(0), f32(5.0, 4.0, 3.0, 1.0)
    scale, truncate = P.sampling_processors(params)
    chain = [*P.penalty_processors(params, 1), *scale, *truncate]
    out = P.apply(chain, context, logits.copy())
    assert np.isfinite(out).tolist() == [False, True, True, False]
    reversed_out = P.apply(chain[::-1], context, logits.copy())
    assert np.isfinite(reversed_out).tolist() == [True, True, False, False]


# Real logits stay far from float32's limits; ±1e4 leaves room for penalties and temperature scaling.
logits_arrays = arrays(np.float32, st.integers(2, 300),
                       elements=st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, width=32))


@st.composite
def valid_params(draw: st.DrawFn) -> SamplingParams:
    return SamplingParams.create(
        repetition_penalty=draw(st.floats(0.1, 5.0)),
        frequency_penalty=draw(st.floats(-2.0, 2.0)),
        presence_penalty=draw(st.floats(-2.0, 2.0)),
        temperature=draw(st.one_of(st.just(0.0), st.floats(0.0, 10.0, exclude_min=True))),
        top_k=draw(st.integers(0, 400)),
        top_p=draw(st.floats(0.0, 1.0, exclude_min=True)),
        min_p=draw(st.floats(0.0, 1.0)),
    )


@settings(max_examples=200, deadline=None)
@given(logits=logits_arrays, params=valid_params(), data=st.data())
def test_full_chain_always_leaves_a_token_and_a_distribution(logits: np.ndarray, params: SamplingParams,
                                                             data: st.DataObject) -> None:
    context = np.array(data.draw(st.lists(st.integers(0, logits.size - 1), max_size=30)), dtype=np.int64)
    prompt_length = data.draw(st.integers(0, context.size))
    scale, truncate = P.sampling_processors(params)
    chain = [*P.penalty_processors(params, prompt_length), *scale, *truncate]
    out = P.apply(chain, context, logits.copy())
    assert out.dtype == np.float32
    assert np.isfinite(out).any()
    assert not np.isnan(out).any()
    probs = P.softmax(out)
    assert abs(probs.sum() - 1.0) < 1e-6
    assert probs[~np.isfinite(out)].sum() == 0.0


@settings(max_examples=200, deadline=None)
@given(logits=logits_arrays, data=st.data())
def test_top_k_keeps_exactly_k_unless_tied(logits: np.ndarray, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, logits.size + 2))
    kept = np.isfinite(P.TopK(k)(ids(), logits.copy()))
    if k >= logits.size:
        assert kept.all()
        return
    kth = np.sort(logits)[::-1][k - 1]
    assert kept.sum() >= k
    np.testing.assert_array_equal(kept, logits >= kth)
    if (logits == kth).sum() == 1:  # no tie at the k-th value
        assert kept.sum() == k


@settings(max_examples=200, deadline=None)
@given(logits=logits_arrays, p=st.floats(0.0, 1.0, exclude_min=True))
def test_top_p_kept_set_reaches_p_and_is_minimal(logits: np.ndarray, p: float) -> None:
    probs = P.softmax(logits)
    kept = np.isfinite(P.TopP(p)(ids(), logits.copy()))
    assert kept[np.argmax(probs)]
    assert probs[kept].sum() >= p - 1e-9
    # Dropping the least likely kept token would fall short of p (unless only the top token is left).
    if kept.sum() > 1:
        assert probs[kept].sum() - probs[kept].min() < p + 1e-9
