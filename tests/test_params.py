"""`SamplingParams.create`: one validated description of a generation, one-line errors naming the field."""

from __future__ import annotations

import pytest

from llm_playground.errors import InvalidParameter
from llm_playground.generate.params import SamplingParams


def _invalid(**values: object) -> InvalidParameter:
    with pytest.raises(InvalidParameter) as info:
        SamplingParams.create(**values)
    return info.value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -0.1),
        ("top_p", 0.0),
        ("top_p", -0.5),
        ("top_p", 1.01),
        ("top_k", -1),
        ("min_p", -0.01),
        ("min_p", 1.5),
        ("max_new_tokens", 0),
        ("max_new_tokens", -3),
        ("n", 0),
    ],
)
def test_out_of_range_value_names_the_field(field: str, value: float) -> None:
    error = _invalid(**{field: value})
    assert str(error.message).startswith(f"{field}: ")
    assert repr(value) in error.message
    assert "\n" not in str(error)
    assert error.fix and field in error.fix


@pytest.mark.parametrize(("field", "value"), [("top_p", 1.0), ("min_p", 0.0), ("min_p", 1.0), ("top_k", 0),
                                              ("temperature", 0.0), ("max_new_tokens", 1), ("n", 1)])
def test_boundary_values_are_accepted(field: str, value: float) -> None:
    assert getattr(SamplingParams.create(**{field: value}), field) == value


def test_unknown_parameter_is_named_and_valid_ones_listed() -> None:
    error = _invalid(top_q=0.5)
    assert error.message == "unknown parameter 'top_q'"
    assert "\n" not in str(error)
    assert error.fix is not None and "top_p" in error.fix and "temperature" in error.fix


@pytest.mark.parametrize("stop", ["", ["ok", ""], ("",)])
def test_empty_stop_string_is_rejected(stop: object) -> None:
    error = _invalid(stop=stop)
    assert error.message.startswith("stop")
    assert "non-empty" in error.message
    assert "\n" not in str(error)


def test_only_the_first_problem_is_reported() -> None:
    error = _invalid(temperature=-1, top_k=-1)
    assert error.message.count(":") == 1


def test_stop_string_becomes_a_tuple() -> None:
    assert SamplingParams.create(stop="x").stop == ("x",)
    assert SamplingParams.create(stop=["a", "b"]).stop == ("a", "b")
    assert SamplingParams.create(stop=("a",)).stop == ("a",)
    assert SamplingParams.create().stop == ()


def test_none_means_default() -> None:
    params = SamplingParams.create(temperature=None, top_k=None, stop=None, seed=None)
    assert params == SamplingParams()


@pytest.mark.parametrize(("values", "greedy"), [
    ({"greedy": True}, True),
    ({"greedy": True, "temperature": 1.3}, True),
    ({"temperature": 0}, True),
    ({"temperature": 0.0}, True),
    ({"temperature": 0.7}, False),
    ({}, False),
])
def test_is_greedy(values: dict, greedy: bool) -> None:
    assert SamplingParams.create(**values).is_greedy is greedy


def test_params_are_frozen() -> None:
    params = SamplingParams.create()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's ValidationError for frozen instances
        params.temperature = 1.0  # type: ignore[misc]


def test_updated_returns_a_validated_copy() -> None:
    params = SamplingParams.create(temperature=0.9, top_k=40, stop="END", seed=3)
    changed = params.updated(temperature=0.2, n=2)
    assert (changed.temperature, changed.n) == (0.2, 2)
    assert (changed.top_k, changed.stop, changed.seed) == (40, ("END",), 3)
    assert (params.temperature, params.n) == (0.9, 1)
    assert params.updated() == params


def test_updated_validates_the_change() -> None:
    params = SamplingParams.create()
    with pytest.raises(InvalidParameter, match="^top_p: "):
        params.updated(top_p=2.0)
    with pytest.raises(InvalidParameter, match="unknown parameter 'topk'"):
        params.updated(topk=3)
