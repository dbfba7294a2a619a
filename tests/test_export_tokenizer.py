"""`llmp export --format hf` writes a tokenizer.json only when transformers then encodes exactly as our
SentencePiece model does: BPE passes (AutoTokenizer gives our ids on the corpus, edge cases and random
text; the exported folder generates what our GPT generates); unigram is refused with a one-line reason."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
from gpt_helpers import make_workspace, shakespeare_text

from llm_playground.generate.loop import complete
from llm_playground.generate.params import SamplingParams
from llm_playground.model.gpt_hf import export_hf
from llm_playground.model.gpt_model import load_gpt
from llm_playground.tokenizer import SentencePieceTokenizer
from llm_playground.tokenizer.spm_to_hf import to_tokenizers
from llm_playground.train.config import build_config
from llm_playground.train.trainer import Trainer

SPECIALS = ("<tool>", "[SEP]")
SMALL = ["n_layer=2", "n_head=2", "n_embd=32", "block_size=32", "batch_size=4", "max_iters=12", "eval_interval=12",
         "log_interval=6", "eval_iters=2", "sample_tokens=0", "warmup_iters=3", "threads=1"]


def _trained(root, model_type: str):
    workspace = make_workspace(root, chars=100_000, vocab_size=500, model_type=model_type, special_tokens=SPECIALS)
    run = workspace.run_dir("tiny")
    Trainer(build_config("tiny", overrides=SMALL), workspace, run).run()
    return workspace, run


@pytest.fixture(scope="module")
def bpe_export(tmp_path_factory):
    workspace, run = _trained(tmp_path_factory.mktemp("bpe"), "bpe")
    return workspace, run, export_hf(run, workspace.root / "export")


def _random_texts(count: int, seed: int = 0) -> list[str]:
    """Corpus words glued by runs of spaces, tabs and newlines, with accents, CJK, emoji, digits and the
    special tokens thrown in: what a user may send, not only what the tokenizer was trained on."""
    rng = random.Random(seed)
    words = shakespeare_text(20_000).split()
    extras = ["é", "naïve", "中文", "😀", "👩‍👩‍👧", "3.14", "2026", "<tool>", "[SEP]", "\u0301", "ß", "Ω", "**", "--",
              "<s>", "</s>", "<unk>", "<0x41>"]
    gaps = [" ", "  ", "   ", "    ", "\t", "\n", "\n\n", " \n ", "", "\r\n"]
    return ["".join(rng.choice(words + extras) + rng.choice(gaps) for _ in range(rng.randint(1, 30)))
            for _ in range(count)]


def test_bpe_export_loads_with_autotokenizer_and_encodes_like_ours(bpe_export):
    from transformers import AutoTokenizer

    workspace, _, result = bpe_export
    assert result.tokenizer_json_skipped is None
    assert result.corpus == workspace.corpus_path and result.checked_texts > 1000  # the run's tokenizer is a copy
    assert {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "TOKENIZER.md"} <= set(result.files)
    theirs = AutoTokenizer.from_pretrained(result.path)
    ours = SentencePieceTokenizer(workspace.tokenizer_path)
    texts = [*_random_texts(400), "  leading", "trailing  ", "tab\there", "\n\n", "", " ", "🇫🇷 ✓ x<tool>y [SEP]",
             "Привет 한국어 مرحبا", workspace.corpus_path.read_text(encoding="utf-8")[-30_000:]]
    for text in texts:
        ids = ours.encode(text)
        assert theirs(text)["input_ids"] == ids, text
        assert theirs.decode(ids) == ours.decode(ids) == text, text
    assert theirs.convert_tokens_to_ids(list(SPECIALS)) == ours.encode("".join(SPECIALS))
    assert (theirs.bos_token_id, theirs.eos_token_id, theirs.unk_token_id, theirs.pad_token_id) == (1, 2, 0, 2)
    assert "AutoTokenizer.from_pretrained" in (result.path / "TOKENIZER.md").read_text(encoding="utf-8")
    as_special = AutoTokenizer.from_pretrained(result.path, split_special_tokens=False)
    assert as_special("a</s>")["input_ids"] == [*ours.encode("a"), 2]


def test_exported_folder_generates_what_our_gpt_generates(bpe_export):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, run, result = bpe_export
    tokenizer = AutoTokenizer.from_pretrained(result.path)
    model = AutoModelForCausalLM.from_pretrained(result.path).eval()
    inputs = tokenizer("ROMEO:", return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=12, do_sample=False, min_new_tokens=12)
    theirs = tokenizer.decode(output[0][inputs["input_ids"].shape[1]:])
    ours = load_gpt(run)  # the same checkpoint the export took (best, else last)
    expected = complete(ours, ours.tokenizer.encode("ROMEO:"), SamplingParams(max_new_tokens=12, temperature=0,
                                                                               ignore_eos=True))[0]
    assert theirs == expected.text and len(theirs) > 0


def test_unigram_export_keeps_the_sentencepiece_model_and_says_why(tmp_path):
    workspace, run = _trained(tmp_path, "unigram")
    env = {**os.environ, "LLMP_THREADS": "1", "LLMP_HOME": str(workspace.root), "COLUMNS": "200"}
    cli = subprocess.run([sys.executable, "-m", "llm_playground.cli.main", "export", "runs/tiny", "--out", "hf"],
                         capture_output=True, text=True, env=env, cwd=workspace.root, timeout=300)
    assert cli.returncode == 0, cli.stderr
    out = workspace.root / "hf"
    assert (out / "tokenizer.model").is_file() and (out / "model.safetensors").is_file()
    assert not (out / "tokenizer.json").exists() and not (out / "tokenizer_config.json").exists()
    why = [line for line in cli.stderr.splitlines() if line.startswith("tokenizer.json not written:")]
    assert len(why) == 1 and "encodes differently" in why[0] and "float32" in why[0], cli.stderr
    assert "no `tokenizer.json`" in (out / "TOKENIZER.md").read_text(encoding="utf-8")
    # What differs is only SentencePiece's float32 tie-breaking: text without runs of spaces converts exactly.
    ours = SentencePieceTokenizer(workspace.tokenizer_path)
    converted = to_tokenizers(ours)
    lines = [line for line in workspace.corpus_path.read_text(encoding="utf-8").splitlines() if "  " not in line]
    assert [e.ids for e in converted.encode_batch(lines, add_special_tokens=False)] == ours.encode_batch(lines)


def test_options_our_trainer_never_sets_are_refused_before_conversion(tmp_path):
    import sentencepiece as spm

    from llm_playground.tokenizer.spm_to_hf import write_hf_tokenizer

    (tmp_path / "corpus.txt").write_text(shakespeare_text(30_000), encoding="utf-8")
    spm.SentencePieceTrainer.Train(input=str(tmp_path / "corpus.txt"), model_prefix=str(tmp_path / "dummy"),
                                   vocab_size=400, byte_fallback=True, add_dummy_prefix=True, num_threads=1,
                                   minloglevel=2)
    reason = write_hf_tokenizer(SentencePieceTokenizer(tmp_path / "dummy.model"), tmp_path, 64, ["a  b"])
    assert reason is not None and "add_dummy_prefix" in reason and "remove_extra_whitespaces" in reason
    assert "'nmt_nfkc'" in reason and not (tmp_path / "tokenizer.json").exists()
