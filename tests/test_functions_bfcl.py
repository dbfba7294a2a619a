"""BFCL-format evaluation (issue 14): the matching rules, the file pair format, the held-out catalog."""

from __future__ import annotations

import json
import random
from importlib import resources

import pytest

from llm_playground.errors import InputError
from llm_playground.functions import load_functions
from llm_playground.functions.bfcl import match_calls, read_bfcl, write_bfcl
from llm_playground.functions.tuning.catalog import BY_KEY, HELDOUT, SETS, TUNING, as_bfcl, cases, draw_call

SPEC = load_functions([{"type": "function", "function": {
    "name": "book", "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "nights": {"type": "integer"}, "budget": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "guest": {"type": "object", "properties": {"first": {"type": "string"}, "last": {"type": "string"}}}},
        "required": ["city"]}}}])
SPECS = {s.name: s for s in SPEC}
ANSWER = {"book": {"city": ["San Francisco", "SF"], "nights": [2, ""], "budget": [300.0, ""], "tags": [["a", "b"], ""],
                   "guest": [{"first": ["Ana"], "last": ["O'Neill", ""]}, ""]}}


@pytest.mark.parametrize(("arguments", "strict", "ok"), [
    ({"city": "San Francisco"}, True, True),
    ({"city": "san francisco"}, False, True),  # BFCL's standardisation: case and spaces
    ({"city": "san francisco"}, True, False),
    ({"city": "SF", "nights": 2, "budget": 300}, True, True),  # an integer is accepted for a float
    ({"city": "SF", "nights": 2.0}, True, False),  # a float is not an integer
    ({"city": "SF", "pets": True}, True, False),  # unexpected argument
    ({"nights": 2}, True, False),  # required argument missing
    ({"city": "SF", "tags": ["a", "b"]}, True, True),
    ({"city": "SF", "tags": ["b", "a"]}, True, False),
    ({"city": "SF", "guest": {"first": "Ana"}}, True, True),  # "" in a nested key: may be left out
    ({"city": "SF", "guest": {"first": "Ana", "last": "O'Neill"}}, True, True),
    ({"city": "SF", "guest": {"first": "Ana", "age": 3}}, True, False),
])
def test_bfcl_matching(arguments, strict, ok):
    assert (not match_calls([("book", arguments)], [ANSWER], SPECS, strict)) is ok


def test_parallel_matching_is_one_to_one_in_any_order():
    answers = [{"book": {"city": ["Lima"]}}, {"book": {"city": ["Oslo"]}}]
    assert not match_calls([("book", {"city": "Oslo"}), ("book", {"city": "Lima"})], answers, SPECS, True)
    assert match_calls([("book", {"city": "Oslo"}), ("book", {"city": "Oslo"})], answers, SPECS, True)
    assert match_calls([("book", {"city": "Oslo"})], answers, SPECS, True) == ["1 call(s) instead of 2"]


def test_the_package_sample_reads_and_round_trips(tmp_path):
    folder = resources.files("llm_playground.functions") / "examples"
    with resources.as_file(folder / "bfcl_sample_questions.jsonl") as q, \
            resources.as_file(folder / "bfcl_sample_answers.jsonl") as a:
        items = read_bfcl(q, a)
    assert {i.kind for i in items} == {"single", "irrelevance", "parallel"}
    assert all(load_functions(i.tools) for i in items)  # BFCL's dict/float types became JSON Schema's
    write_bfcl(items, tmp_path / "q.jsonl", tmp_path / "a.jsonl")
    again = read_bfcl(tmp_path / "q.jsonl", tmp_path / "a.jsonl")
    assert [(i.id, i.messages, i.tools, i.answers) for i in again] == [(i.id, i.messages, i.tools, i.answers)
                                                                      for i in items]
    line = json.loads((tmp_path / "q.jsonl").read_text().splitlines()[0])
    assert line["function"][0]["parameters"]["type"] == "dict"


def test_catalog_is_split_by_family_and_seeded():
    assert len(SETS) >= 40 and len(HELDOUT) >= 40 and not HELDOUT & TUNING
    assert len({f.name for s in SETS for f in s.functions}) == sum(len(s.functions) for s in SETS)
    assert len({s.domain for s in SETS}) >= 20
    rng = random.Random(0)
    for family in SETS:  # every template mentions every required argument, and the call validates
        for function in family.functions:
            spec = load_functions([function.tool()])[0]
            for _ in range(4):
                request, answer = draw_call(rng, function)
                assert request and set(answer) == set(spec.properties)
    drawn = cases("heldout", 300, 60, 40)
    assert [c.kind for c in drawn].count("single") == 300 and {c.family for c in drawn} <= HELDOUT
    assert len({c.family for c in drawn if c.kind == "single"}) == len(HELDOUT)
    assert [c.request for c in drawn] == [c.request for c in cases("heldout", 300, 60, 40)]
    assert all(len(as_bfcl(c).answers or []) == 2 for c in drawn if c.kind == "parallel")
    assert not {c.family for c in cases("tuning", 30, 5, 5)} & HELDOUT
    assert all(BY_KEY[k] for k in TUNING)


@pytest.mark.slow
def test_llmp_eval_calls_on_a_bfcl_pair(tmp_path):
    import os
    import subprocess
    import sys

    folder = resources.files("llm_playground.functions") / "examples"
    with resources.as_file(folder / "bfcl_sample_questions.jsonl") as q, \
            resources.as_file(folder / "bfcl_sample_answers.jsonl") as a:
        lines = q.read_text(encoding="utf-8").splitlines()
        answers = a.read_text(encoding="utf-8")
    picked = [lines[0], next(line for line in lines if "irrelevance" in line)]
    (tmp_path / "q.jsonl").write_text("\n".join(picked) + "\n", encoding="utf-8")
    (tmp_path / "a.jsonl").write_text(answers, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "llm_playground.cli.main", "eval", "calls", "--questions",
                          str(tmp_path / "q.jsonl"), "--answers", str(tmp_path / "a.jsonl"), "--json", "--strict"],
                         capture_output=True, text=True, env={**os.environ, "LLMP_THREADS": "1"}, timeout=600,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["total"] == 2 and report["per_kind"]["single"]["total"] == 1
    assert report["per_kind"]["irrelevance"]["total"] == 1 and report["valid_pct"] == 100.0
    bad = subprocess.run([sys.executable, "-m", "llm_playground.cli.main", "eval", "calls", "--answers", "x.jsonl"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2 and "--answers needs --questions" in bad.stderr


@pytest.mark.parametrize(("function", "truth", "fragment"), [
    (["not a function"], [{"f": {}}], "'function' must be"),
    ([{"name": "f"}], [{}], "ground_truth call"),
    ([{"name": "f"}], [{"f": "x"}], "ground_truth call"),
    ([{"name": "f"}], [{"f": {"x": 1}}], "ground_truth call")])
def test_malformed_bfcl_items_are_input_errors(tmp_path, function, truth, fragment):
    (tmp_path / "q.jsonl").write_text(json.dumps({"id": "a", "question": "hi", "function": function}) + "\n")
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": "a", "ground_truth": truth}) + "\n")
    with pytest.raises(InputError, match=fragment):
        read_bfcl(tmp_path / "q.jsonl", tmp_path / "a.jsonl")
