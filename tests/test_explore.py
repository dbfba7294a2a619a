"""The explorers: analyses on a tiny bigram model and on the real bundled model, charts, and `llmp explore`."""

from __future__ import annotations

import html.parser
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pytest

from llm_playground.errors import ContextOverflow, InputError, InvalidParameter
from llm_playground.explore import charts, embeddings, experiments, perplexity, tokens
from llm_playground.explore.attention import attention, top_attended
from llm_playground.explore.common import to_jsonable
from llm_playground.explore.next_token import entropy, next_token, probabilities
from llm_playground.explore.walkthrough import walkthrough
from llm_playground.generate import SamplingParams, complete
from llm_playground.model.base import ModelInfo
from llm_playground.tokenizer.base import Message

# --- a tiny model: a pure bigram table over characters --------------------------------------------------------

CHARS = "abcdefghijklmnopqrstuvwxyz ."


class CharTokenizer:
    vocab_size = len(CHARS)
    bos_id = None
    eos_id = None
    stop_ids: frozenset[int] = frozenset()

    def encode(self, text: str) -> list[int]:
        return [CHARS.index(c) for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(CHARS[i] for i in ids)

    def token_text(self, token_id: int) -> str:
        return CHARS[token_id]

    def apply_chat_template(self, messages: Sequence[Message]) -> str | None:
        return None


@dataclass
class Cache:
    tokens: list[int] = field(default_factory=list)

    @property
    def length(self) -> int:
        return len(self.tokens)

    def copy(self) -> Cache:
        return Cache(list(self.tokens))


class Bigram:
    """Next-token logits depend on the last token only, so any window with the previous token gives the same NLL."""

    def __init__(self, context_length: int = 8) -> None:
        self.table = np.random.default_rng(0).normal(0, 2, (len(CHARS), len(CHARS))).astype(np.float32)
        self.tokenizer = CharTokenizer()
        self.context_length = context_length
        self.info = ModelInfo("bigram", "test", "bigram", self.table.size, context_length, len(CHARS), "float32", "-")

    def new_cache(self, capacity: int | None = None) -> Cache:
        return Cache()

    def forward(self, ids: Sequence[int], cache: Cache) -> np.ndarray:
        cache.tokens += list(ids)
        assert cache.length <= self.context_length, "the explorer fed more than the context"
        return self.table[cache.tokens[-1]].copy()


def hand_nll(table: np.ndarray, ids: list[int]) -> list[float]:
    out = []
    for prev, target in zip(ids, ids[1:], strict=False):
        row = table[prev].astype(np.float64)
        out.append(math.log(np.exp(row).sum()) - row[target])
    return out


# --- unit tests (fast) ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("length, window, stride", [(2, 2, 1), (10, 4, 1), (10, 4, 3), (25, 8, 4), (7, 64, 32),
                                                    (100, 16, 15)])
def test_windows_score_every_token_once_with_its_previous_token(length, window, stride):
    scored = []
    for begin, end, first in perplexity.windows(length, window, stride):
        assert end - begin <= window and begin <= first - 1
        scored += range(first, end)
    assert scored == list(range(1, length))


def test_perplexity_is_exp_mean_nll_and_windows_past_the_context():
    model = Bigram(context_length=8)
    ids = model.tokenizer.encode("the quick brown fox jumps over the lazy dog.")
    expected = hand_nll(model.table, ids)
    for window, stride in [(8, 4), (2, 1), (5, 4)]:
        result = perplexity.perplexity(model, ids, window, stride)
        assert result.table["nll"].to_numpy() == pytest.approx(expected, rel=1e-5)
        assert result.perplexity == pytest.approx(math.exp(np.mean(expected)), rel=1e-5)
        assert result.bits_per_token == pytest.approx(np.mean(expected) / math.log(2), rel=1e-5)
    assert result.windows > 1 and result.tokens == len(ids)
    with pytest.raises(InvalidParameter, match="window"):
        perplexity.perplexity(model, ids, window=9)
    with pytest.raises(InvalidParameter, match="stride"):
        perplexity.perplexity(model, ids, window=4, stride=4)
    with pytest.raises(InputError, match="at least 2 tokens"):
        perplexity.perplexity(model, ids[:1])


def test_texts_longer_than_the_context_are_refused_outside_perplexity():
    model = Bigram(context_length=8)
    with pytest.raises(ContextOverflow, match="context holds 8"):
        next_token(model, model.tokenizer.encode("far too long a text"))


def test_next_token_probabilities_temperature_and_entropy():
    model = Bigram()
    result = next_token(model, [0, 1], top_n=5, temperature=0.5)
    probs = result.table["probability"].to_numpy()
    assert list(probs) == sorted(probs, reverse=True) and 0 < probs.sum() <= 1
    logits = model.table[1]
    scaled = np.exp((logits - logits.max()) / 0.5)
    assert probs[0] == pytest.approx(scaled.max() / scaled.sum(), rel=1e-5)
    assert result.table["id"].iloc[0] == int(np.argmax(logits))
    assert result.entropy_bits == pytest.approx(result.entropy_nats / math.log(2))
    assert probabilities(logits, 0.0).max() == 1.0 and entropy(probabilities(logits, 0.0)) == 0.0
    assert entropy(np.full(4, 0.25)) == pytest.approx(math.log(4))


def test_distinct_n():
    assert experiments.distinct_n([[1, 2, 3], [1, 2, 4]], 1) == pytest.approx(4 / 6)
    assert experiments.distinct_n([[1, 2, 3], [1, 2, 4]], 2) == pytest.approx(3 / 4)
    assert experiments.distinct_n([[1]], 2) == 0.0


def test_sweep_on_the_tiny_model_is_seeded():
    model = Bigram(context_length=64)
    base = SamplingParams(max_new_tokens=6, n=3, seed=5)
    first = experiments.sweep(model, [0, 1], "temperature", base)
    again = experiments.sweep(model, [0, 1], "temperature", base)
    assert first.outputs.equals(again.outputs) and len(first.outputs) == 3 * len(experiments.TEMPERATURES)
    assert set(first.summary["setting"]) == {f"temperature={t:g}" for t in experiments.TEMPERATURES}
    assert len(experiments.sweep(model, [0], "repetition", base.updated(temperature=0)).outputs) == 3
    with pytest.raises(InvalidParameter, match="unknown sweep"):
        experiments.sweep(model, [0], "nope", base)


def test_too_few_points_for_tsne_and_umap_say_why():
    few = np.random.default_rng(0).normal(size=(3, 16))
    for method, name in [("tsne", "t-SNE"), ("umap", "UMAP")]:
        with pytest.raises(InputError, match=rf"{name} needs at least 5 points \(got 3\)") as caught:
            embeddings.projections(few, ["a", "b", "c"], [method])
        assert "more words" in caught.value.fix
    points = embeddings.projections(few, ["a", "b", "c"], ["pca"])
    assert points.shape == (3, 5) and set(points["method"]) == {"PCA"}


def test_to_jsonable_turns_nan_into_null():
    assert json.dumps(to_jsonable({"a": np.array([1.0, np.nan]), "b": np.float32(2)})) == '{"a": [1.0, null], "b": 2.0}'


def test_render_refuses_unknown_formats():
    with pytest.raises(InputError, match=".svg"):
        charts.render(None, {}, ".svg")


# --- helpers to check outputs ---------------------------------------------------------------------------------

class _PlotlyDivFinder(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        self.found |= tag == "div" and "plotly-graph-div" in classes


def assert_html_chart(text: str) -> None:
    finder = _PlotlyDivFinder()
    finder.feed(text)
    assert finder.found, "no plotly div in the HTML"
    assert 'src="https://cdn.plot.ly' not in text and len(text) > 1_000_000  # plotly.js inline: opens offline


def decode_png(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, after checking every chunk's CRC and inflating the pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, pixels, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos: pos + 8])
        body = data[pos + 8: pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length: pos + 12 + length])[0] == zlib.crc32(kind + body)
        if kind == b"IHDR":
            header = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            pixels += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    assert len(zlib.decompress(pixels)) == height * (1 + width * channels * depth // 8)
    return width, height


# --- the real model (slow) ------------------------------------------------------------------------------------

TEXT = "The cat sat on the mat because it was tired."


@pytest.mark.slow
def test_attention_rows_sum_to_one_and_are_causal(smollm2):
    ids = smollm2.tokenizer.encode(TEXT)
    maps = attention(smollm2, ids)
    c = smollm2.config
    assert maps.weights.shape == (c.num_layers, c.num_heads, len(ids), len(ids))
    assert np.allclose(maps.weights.sum(axis=-1), 1.0, atol=1e-4)
    above_diagonal = np.triu(np.ones((len(ids), len(ids)), dtype=bool), k=1)
    assert not maps.weights[..., above_diagonal].any()
    assert maps.head(-1, -1).shape == (len(ids), len(ids)) and maps.mean(2).sum(axis=-1) == pytest.approx(1, abs=1e-4)
    assert len(top_attended(maps, maps.mean(0))) == len(ids)
    with pytest.raises(InvalidParameter, match="layer 30 does not exist"):
        maps.layer(30)


@pytest.mark.slow
def test_hidden_states_match_the_config_and_start_at_the_embeddings(smollm2):
    ids = smollm2.tokenizer.encode(TEXT)
    states = embeddings.hidden_states(smollm2, ids)
    c = smollm2.config
    assert states.states.shape == (c.num_layers + 1, len(ids), c.hidden_size)
    assert smollm2.embedding_matrix().shape == (c.vocab_size, c.hidden_size)
    assert np.array_equal(states.layer(0), smollm2.embedding_matrix()[ids])
    words = embeddings.word_embeddings(smollm2, ["king", "queen", "tokenization"])
    assert words.vectors.shape == (3, c.hidden_size) and words.token_counts[0] == 1


@pytest.mark.slow
def test_perplexity_equals_exp_mean_nll_by_hand_on_the_real_model(smollm2):
    ids = smollm2.tokenizer.encode("The capital of France is Paris.")
    nll = []
    for i in range(1, len(ids)):  # one prefix at a time through forward(): independent of forward_full
        logits = smollm2.forward(ids[:i], smollm2.new_cache(i)).astype(np.float64)
        nll.append(np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[ids[i]])
    result = perplexity.perplexity(smollm2, ids)
    assert result.windows == 1
    assert result.table["nll"].to_numpy() == pytest.approx(nll, abs=2e-3)
    assert result.perplexity == pytest.approx(math.exp(np.mean(nll)), rel=1e-3)
    # The sliding window gives the one-pass value when the text fits it ...
    fitted = perplexity.perplexity(smollm2, ids, window=len(ids), stride=1)
    assert fitted.perplexity == pytest.approx(result.perplexity, rel=1e-5)
    # ... and scores every token once when it does not.
    windowed = perplexity.perplexity(smollm2, ids, window=4, stride=2)
    assert windowed.windows > 1 and len(windowed.table) == len(ids) - 1 and np.isfinite(windowed.perplexity)


@pytest.mark.slow
def test_a_sweep_with_the_same_seed_gives_the_same_outputs(smollm2):
    ids = smollm2.tokenizer.encode("Once upon a time")
    settings = experiments.temperature_settings(SamplingParams(max_new_tokens=6, n=2, seed=3), [0.7, 1.2])
    first = experiments.run(smollm2, ids, settings)
    assert first.outputs.equals(experiments.run(smollm2, ids, settings).outputs)
    assert list(first.summary["samples"]) == [2, 2]


@pytest.mark.slow
def test_next_token_and_walkthrough_agree_with_the_loop(smollm2):
    ids = smollm2.tokenizer.encode("The capital of France is")
    result = next_token(smollm2, ids, top_n=5, temperature=1.0)
    [greedy] = complete(smollm2, ids, SamplingParams(greedy=True, max_new_tokens=1))
    assert result.table["id"].iloc[0] == greedy.token_ids[0] and result.table["text"].iloc[0] == "␣Paris"
    params = SamplingParams(temperature=0.7, seed=2, max_new_tokens=4)
    walk = walkthrough(smollm2, "The capital of France is", ids, params)
    [sampled] = complete(smollm2, ids, params)
    assert walk.sampled_id == sampled.token_ids[0] and walk.generated_text == sampled.text
    assert walk.embedding_shape == (len(ids), smollm2.config.hidden_size) and walk.num_layers == 30
    assert walk.softmax_sum == pytest.approx(1.0) and len(walk.top) == 5 and len(walk.steps()) == 9
    # The top-5 comes from the very logits the loop sampled from: its probability is the sampled token's.
    assert walk.top["probability"].iloc[0] == pytest.approx(walk.sampled_probability, rel=1e-5)
    deep = walkthrough(smollm2, "The capital of France is", ids, params, layers=True)
    assert len(deep.layer_norms) == 31 and deep.sampled_id == walk.sampled_id
    assert_html_chart(charts.to_html(charts.walkthrough(deep)))


@pytest.mark.slow
def test_every_chart_draws_from_the_data(smollm2):
    ids = smollm2.tokenizer.encode(TEXT)
    maps = attention(smollm2, ids)
    analysis = tokens.analyze(smollm2.tokenizer, TEXT)
    figures = [
        charts.token_lengths(analysis),
        charts.tokenizer_comparison(tokens.compare(TEXT, {"a": smollm2.tokenizer, "b": smollm2.tokenizer})),
        charts.next_token(next_token(smollm2, ids)),
        charts.attention_head(maps, 0, 0), charts.attention_grid(maps, -1), charts.attention_mean(maps, 3),
        charts.embeddings(embeddings.projections(embeddings.hidden_states(smollm2, ids).layer(5), maps.tokens,
                                                 ["pca"]), "hidden states"),
        charts.surprisal(perplexity.perplexity(smollm2, ids)),
        charts.perplexity_comparison(perplexity.compare(smollm2, perplexity.example_texts())),
    ]
    for fig in figures:
        assert_html_chart(charts.to_html(fig))
        json.loads(charts.render(fig, {"x": 1}, ".json"))


# --- the CLI (slow: a real process per command) ---------------------------------------------------------------

def llmp(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLMP_THREADS": "1", "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "llm_playground.cli.main", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=300)


COMMANDS = {
    "tokens": ["tokens", TEXT, "--compare", "smollm2"],
    "next": ["next", "The capital of France is", "--top", "5"],
    "attention": ["attention", TEXT, "--layer", "-1"],
    "embeddings": ["embeddings", TEXT, "--method", "pca", "--layer", "4"],
    "perplexity": ["perplexity", TEXT],
    "sweep": ["sweep", "Once upon a time", "--samples", "2", "--max-new-tokens", "4"],
    "walkthrough": ["walkthrough", "The capital of France is", "--max-new-tokens", "3", "--layers"],
}


# PNG export drives a headless Chrome/Chromium (the Makefile installs Debian's chromium when it runs as root).
BROWSER = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_writes_html_png_and_json(name, tmp_path):
    html_file, png_file, json_file = (tmp_path / f"{name}.{suffix}" for suffix in ("html", "png", "json"))
    outputs = [html_file, json_file] + ([png_file] if BROWSER else [])
    run = llmp("explore", *COMMANDS[name], *[arg for path in outputs for arg in ("--out", str(path))])
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()
    assert_html_chart(html_file.read_text(encoding="utf-8"))
    assert json.loads(json_file.read_text(encoding="utf-8"))
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"
    if not BROWSER:
        pytest.skip("no Chrome or Chromium here: PNG export not checked (apt-get install chromium)")
    width, height = decode_png(png_file.read_bytes())
    assert width >= 400 and height >= 200


@pytest.mark.slow
def test_tsne_on_too_few_points_is_one_line_and_status_2():
    run = llmp("explore", "embeddings", "The cat sat", "--method", "tsne")
    assert run.returncode == 2
    assert run.stderr.strip() == ("error: t-SNE needs at least 5 points (got 3) — give a longer text or more words, "
                                  "or use --method pca")


@pytest.mark.slow
def test_cli_refuses_bad_outputs_and_overlong_attention():
    run = llmp("explore", "next", "hello", "--out", "chart.svg")
    assert run.returncode == 2 and "unknown format '.svg'" in run.stderr and "Traceback" not in run.stderr
    run = llmp("explore", "attention", "-", stdin="word " * 600)
    assert run.returncode == 2 and "give at most 512 tokens" in run.stderr
