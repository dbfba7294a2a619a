"""Function calling on the real bundled model: the library, the CLI, the course SDK class."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import llmp

from llm_playground.functions import call_functions, load_functions

pytestmark = pytest.mark.slow

COURSE = json.loads((Path(__file__).parents[1] / "src/llm_playground/functions/examples/functions_definition.json")
                    .read_text())


@pytest.fixture(scope="module")
def course():
    return load_functions(COURSE)


def ask(model, functions, prompt, **options):
    return call_functions(model, [{"role": "user", "content": prompt}], functions, **options)


def test_right_function_and_values(smollm2, course):
    greet = ask(smollm2, course, "Greet john")
    assert [(c.name, c.arguments) for c in greet.calls] == [("fn_greet", {"name": "john"})]
    add = ask(smollm2, course, "What is the sum of 2 and 3?")
    assert [(c.name, c.arguments) for c in add.calls] == [("fn_add_numbers", {"a": 2.0, "b": 3.0})]
    assert type(add.calls[0].arguments["a"]) is float
    assert add.stats.valid and add.stats.forced_tokens > 5 and add.stats.mask_ms > 0
    assert add.choice_probs["fn_add_numbers"] == max(add.choice_probs.values())
    steps = [s for s in add.steps if not s["forced"]]
    assert steps and all(s["allowed"] >= 1 for s in steps)


def test_named_tool_choice_parallel_and_none(smollm2, course):
    named = ask(smollm2, course, "Greet john", tool_choice={"name": "fn_reverse_string"})
    assert [c.name for c in named.calls] == ["fn_reverse_string"]
    parallel = ask(smollm2, course, "Greet john and greet mary", parallel=True)
    assert parallel.stats.valid and isinstance(json.loads(parallel.text), list)
    assert all(c.name in {f.name for f in course} for c in parallel.calls)
    maybe = ask(smollm2, course, "Greet john", allow_none=True)
    assert maybe.stats.valid


def test_strings_with_quotes_backslashes_and_unicode_stay_valid(smollm2, course):
    for prompt in ['Reverse the string "a \\"quoted\\" \\\\ back\\\\slash"', "Greet Zoë 🐍 Łukasz",
                   "Reverse 'line one\nline two'"]:
        outcome = ask(smollm2, course, prompt)
        assert outcome.stats.valid, outcome.text
        json.loads(outcome.text)


def test_function_without_parameters(smollm2):
    functions = load_functions([{"name": "fn_now", "description": "The current time.", "parameters": {}}])
    outcome = ask(smollm2, functions, "What time is it?")
    assert [(c.name, c.arguments) for c in outcome.calls] == [("fn_now", {})]


def test_cli_batch_keeps_order_reports_failures_and_executes(tmp_path):
    (tmp_path / "defs.json").write_text(json.dumps(COURSE))
    prompts = [{"prompt": "Greet shrek"}, {"prompt": "  "}, {"prompt": "What is the square root of 16?"}]
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    run = llmp("call", "--functions", "defs.json", "--input", "prompts.json", "--output", "out.json", "--execute",
               "--trace", "trace.jsonl", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    entries = json.loads((tmp_path / "out.json").read_text())
    assert [e["prompt"] for e in entries] == [p["prompt"] for p in prompts]
    assert entries[0] == {"prompt": "Greet shrek", "name": "fn_greet", "parameters": {"name": "shrek"},
                          "result": "Hello, shrek!"}
    assert "empty" in entries[1]["error"]
    assert entries[2]["parameters"] == {"a": 16.0} and entries[2]["result"] == 4.0
    assert '"a": 16.0' in (tmp_path / "out.json").read_text()
    trace = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert any(t["type"] == "step" and t["allowed"] for t in trace)
    evaluation = llmp("eval", "calls", "--results", "out.json", "--expected", "out.json", "--json", cwd=tmp_path)
    assert evaluation.returncode == 0, evaluation.stderr
    assert json.loads(evaluation.stdout)["total"] == 3


def test_cli_one_prompt_and_default_files(tmp_path):
    run = llmp("call", "Reverse the string 'hello'", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"prompt": "Reverse the string 'hello'", "name": "fn_reverse_string",
                                      "parameters": {"s": "hello"}}
    assert (tmp_path / "data/input/functions_definition.json").exists()


@pytest.mark.parametrize("content, message", [
    ("{broken", "not valid JSON"),
    ('[{"name": "f", "parameters": {"x": {"type": "complex"}}}]', "parameter 'x': unknown type 'complex'"),
])
def test_cli_bad_definitions_one_line_status_2(tmp_path, content, message):
    (tmp_path / "defs.json").write_text(content)
    run = llmp("call", "hi", "--functions", "defs.json", cwd=tmp_path)
    assert run.returncode == 2 and message in run.stderr and "defs.json" in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    missing = llmp("call", "hi", "--functions", "nope.json", cwd=tmp_path)
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_very_long_prompt_is_reported(smollm2, course):
    from llm_playground.errors import ContextOverflow

    with pytest.raises(ContextOverflow):
        ask(smollm2, course, "add " * 9000)


def test_small_llm_model_sdk():
    from llm_playground.functions.sdk import Small_LLM_Model

    sdk = Small_LLM_Model("smollm2", threads=1)
    ids = sdk.encode("The capital of France is")
    logits = sdk.get_logits_from_input_ids(ids)
    assert len(logits) == 49152 and isinstance(logits[0], float)
    assert sdk.decode([max(range(len(logits)), key=logits.__getitem__)]).strip() == "Paris"
    assert sdk.decode(ids) == "The capital of France is"
    vocab = json.loads(Path(sdk.get_path_to_vocab_file()).read_text())
    assert vocab["Paris"] == sdk.encode("Paris")[0]
    assert Path(sdk.get_path_to_merges_file()).read_text().startswith("#version")
    assert sdk.get_path_to_vocabulary_json() == sdk.get_path_to_vocab_file()
    assert Path(sdk.get_path_to_tokenizer_file()).name == "tokenizer.json"


# A held-out catalog request (functions/tuning/catalog.py, heldout_single_106) that once came back with no
# call under "required": the model repeated list items ("", "", …) until the token limit cut the JSON.
SAVE_NOTE = [{"type": "function", "function": {
    "name": "save_note", "description": "Save a note with a title and tags.",
    "parameters": {"type": "object", "properties": {
        "title": {"type": "string", "description": "Note title."},
        "tags": {"type": "array", "description": "Tags.", "items": {"type": "string"}}},
        "required": ["title", "tags"]}}}]


def test_required_call_is_never_lost_to_an_endless_list(smollm2):
    from llm_playground.functions.calling import MAX_ITEMS
    from llm_playground.generate.params import SamplingParams

    functions = load_functions(SAVE_NOTE)
    prompt = "New note 'The Ninth Wave' with the tags urgent, home, ideas and reading"
    for choice in ("required", {"name": "save_note"}):
        outcome = ask(smollm2, functions, prompt, tool_choice=choice)
        assert outcome.stats.valid and [c.name for c in outcome.calls] == ["save_note"], outcome.text
        assert outcome.result.finish_reason != "length"
        tags = outcome.calls[0].arguments["tags"]
        assert tags[:4] == ["urgent", "home", "ideas", "reading"] and len(tags) <= MAX_ITEMS
    # Too few tokens for the first try's long list: the second, shorter try still gives a call.
    short = ask(smollm2, functions, prompt, params=SamplingParams(temperature=0.0, max_new_tokens=48))
    assert short.stats.valid and [c.name for c in short.calls] == ["save_note"], short.text
