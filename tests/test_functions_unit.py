"""Function calling without a model: definitions, grammar masks over the real tokenizer, validation, scoring."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from llm_playground.errors import InputError
from llm_playground.functions import FunctionSpec, call_schema, load_functions, validate_call
from llm_playground.functions.builtin import BUILTIN, execute, load_implementations
from llm_playground.functions.evaluate import evaluate_calls, same_value
from llm_playground.functions.grammar import GrammarConstraint, schema_grammar


@pytest.fixture(scope="module")
def course_functions():
    """The course's public definitions, as the package ships them (functions/examples)."""
    from importlib import resources

    path = resources.files("llm_playground.functions") / "examples" / "functions_definition.json"
    return load_functions(json.loads(path.read_text(encoding="utf-8")))


def test_three_formats_read_into_one_spec():
    course = load_functions([{"name": "f", "description": "d", "parameters": {"x": {"type": "number"}},
                              "returns": {"type": "number"}}])[0]
    old = load_functions([{"fn_name": "f", "description": "d", "args_names": ["x"], "args_types": {"x": "float"},
                           "return_type": "float"}])[0]
    tools = load_functions([{"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object", "properties": {"x": {"type": "number"}},
                                                        "required": ["x"]}}}])[0]
    assert course.properties == old.properties == tools.properties == {"x": {"type": "number"}}
    assert course.required == old.required == tools.required == ["x"]
    assert course.signature() == "f(x: number) -> number"


@pytest.mark.parametrize("data, fragment", [
    ("[{\"name\": \"f\", \"parameters\": {\"x\": {\"type\": \"float\"}}}]", "item 0 (f), parameter 'x': unknown type"),
    ("[{\"parameters\": {}}]", "item 0: field 'name'"),
    ("[1]", "item 0 is not an object"),
    ("[]", "non-empty JSON list"),
    ("[{\"name\": \"f\", \"parameters\": {}}, {\"name\": \"f\", \"parameters\": {}}]", "defined twice"),
    ("{not json", "not valid JSON"),
])
def test_malformed_definitions_name_the_item_and_field(tmp_path, data, fragment):
    path = tmp_path / "defs.json"
    path.write_text(data)
    with pytest.raises(InputError) as info:
        load_functions(path)
    assert fragment in str(info.value)
    assert str(path) in str(info.value) or fragment == "not valid JSON"


def test_missing_definitions_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_functions(tmp_path / "nope.json")


def test_validation_types_numbers_as_floats_and_rejects_wrong_types(course_functions):
    add = next(f for f in course_functions if f.name == "fn_add_numbers")
    checked = validate_call(add, {"a": 2, "b": 3.5})
    assert checked.parameters == {"a": 2.0, "b": 3.5} and type(checked.parameters["a"]) is float
    assert json.dumps(checked.parameters) == '{"a": 2.0, "b": 3.5}'
    assert validate_call(add, {"a": "2", "b": 3}) is None
    assert validate_call(add, {"a": 1}) is None
    integer = load_functions([{"name": "g", "parameters": {"n": {"type": "integer"}}}])[0]
    assert validate_call(integer, {"n": 3}).parameters == {"n": 3}
    assert validate_call(integer, {"n": 3.5}) is None


def test_same_value_by_declared_type():
    assert same_value(2.0, 2.0, {"type": "number"})
    assert not same_value(2.0, 2, {"type": "number"})
    assert same_value(2, 2, {"type": "integer"}) and not same_value(2, 2.0, {"type": "integer"})
    assert not same_value("a", "A", {"type": "string"})


def test_evaluate_counts_exact_and_lists_failures():
    expected = [{"prompt": "p1", "name": "f", "parameters": {"a": 1.0}},
                {"prompt": "p2", "name": "f", "parameters": {"a": 2.0}}]
    results = [{"prompt": "p1", "name": "f", "parameters": {"a": 1.0}},
               {"prompt": "p2", "name": "g", "parameters": {}}]
    report = evaluate_calls(results, expected)
    assert (report.exact, report.total, report.name_correct) == (1, 2, 1)
    assert report.failures[0]["prompt"] == "p2"


def test_builtins_and_user_modules(tmp_path):
    assert execute(BUILTIN, "fn_substitute_string_with_regex",
                   {"source_string": "a1b22", "regex": r"\d+", "replacement": "#"}) == ("a#b#", None)
    assert execute(BUILTIN, "fn_get_square_root", {"a": -1.0})[1].startswith("ValueError")
    module = tmp_path / "mine.py"
    module.write_text("def shout(text):\n    return text.upper()\n")
    registry = load_implementations([module])
    assert execute(registry, "shout", {"text": "hi"}) == ("HI", None)
    assert execute(registry, "nothing", {})[1] == "no implementation for nothing"


def _walk(tokenizer, constraint: GrammarConstraint, rng: np.random.Generator, steps: int = 400) -> str:
    """Sample random allowed tokens (checking every allowed token of the first steps is valid) to the end."""
    ids: list[int] = []
    for _ in range(steps):
        if constraint.is_finished():
            break
        forced = constraint.forced()
        if forced:
            for token in forced:
                constraint.advance(token)
            ids += forced
            continue
        mask = constraint.allowed(np.array(ids))
        allowed = np.flatnonzero(mask)
        assert allowed.size > 0
        # Every allowed token must be accepted: try a sample of them on copies of the matcher.
        for token in rng.choice(allowed, size=min(20, allowed.size), replace=False):
            probe = constraint.matcher.deep_copy()
            assert probe.consume_token(int(token)), tokenizer.token_text(int(token))
        # Prefer closing tokens now and then so the walk ends.
        stop = [t for t in allowed if tokenizer.token_text(int(t)) in ('"', '}', ']', '"}', '"}}')]
        token = int(rng.choice(stop)) if stop and rng.random() < 0.3 else int(rng.choice(allowed))
        if token in tokenizer.stop_ids:
            break
        constraint.advance(token)
        ids.append(token)
    assert constraint.stats.invalid_tokens == 0
    return tokenizer.decode(ids)


@pytest.mark.parametrize("seed", range(4))
def test_random_walks_under_the_grammar_always_give_valid_calls(smollm2_tokenizer, course_functions, seed):
    schema = call_schema(course_functions)
    text = _walk(smollm2_tokenizer, GrammarConstraint(smollm2_tokenizer, schema_grammar(schema)),
                 np.random.default_rng(seed))
    call = json.loads(text)
    spec = next(f for f in course_functions if f.name == call["name"])
    assert validate_call(spec, call["parameters"]) is not None


def test_rich_schemas_enum_nested_arrays_optional(smollm2_tokenizer):
    spec = load_functions([{"type": "function", "function": {"name": "book", "parameters": {
        "type": "object", "required": ["city", "guests"],
        "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo"]},
                       "guests": {"type": "array", "items": {"type": "object", "properties": {
                           "name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]}},
                       "vip": {"type": "boolean"}}}}}])
    for seed in range(3):
        text = _walk(smollm2_tokenizer, GrammarConstraint(smollm2_tokenizer, schema_grammar(call_schema(spec))),
                     np.random.default_rng(seed))
        call = json.loads(text)
        assert call["parameters"]["city"] in ("Paris", "Oslo")
        assert all(isinstance(g["age"], int) for g in call["parameters"]["guests"])


def test_parallel_and_none_schemas(smollm2_tokenizer, course_functions):
    text = _walk(smollm2_tokenizer, GrammarConstraint(
        smollm2_tokenizer, schema_grammar(call_schema(course_functions, parallel=True))), np.random.default_rng(0))
    assert isinstance(json.loads(text), list)
    none_schema = call_schema(course_functions[:1], allow_none=True)
    constraint = GrammarConstraint(smollm2_tokenizer, schema_grammar(none_schema))
    forced = constraint.forced()
    assert smollm2_tokenizer.decode(forced).startswith('{"name')


def test_a_hundred_functions_build_a_grammar_quickly(smollm2_tokenizer):
    specs = [FunctionSpec(name=f"fn_{i}", parameters={"type": "object", "properties": {"x": {"type": "number"}},
                                                       "required": ["x"]}) for i in range(120)]
    start = time.perf_counter()
    constraint = GrammarConstraint(smollm2_tokenizer, schema_grammar(call_schema(specs)))
    # The grammar compiles lazily: time it up to the first mask, as a call would use it.
    forced = constraint.forced()
    assert np.count_nonzero(constraint.allowed(np.array([]))) > 0
    seconds = time.perf_counter() - start
    # 1.2 s measured on 2 cores at a load average of 10 (2026-12-08); the bound leaves room for a loaded
    # runner, not for a grammar that grows with the square of the functions.
    assert seconds < 10, f"a 120-function grammar took {seconds:.1f} s to its first mask"
    call = '{"name":"fn_119","parameters":{"x":2}}'
    prefix = smollm2_tokenizer.decode(forced)
    assert call.startswith(prefix) and prefix.startswith('{"name":"fn_')  # the shared part of all names is forced
    for token in forced:
        constraint.advance(token)
    # The last of the 120 names is still reachable, and its call is accepted to the end.
    for token in smollm2_tokenizer.encode(call[len(prefix):]):
        mask = constraint.allowed(np.array([]))
        assert mask is not None and mask[token], smollm2_tokenizer.token_text(token)
        constraint.advance(token)
    assert constraint.is_finished() and constraint.stats.invalid_tokens == 0
