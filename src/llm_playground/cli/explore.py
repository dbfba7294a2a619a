"""`llmp explore`: look inside the model — tokens, next token, attention, embeddings, perplexity, sweeps,
a walkthrough. Each command calls one analysis, prints rich tables and writes the chart or its data.

The analyses and plotly are imported inside the commands: `llmp generate` should not pay for pandas,
plotly and scikit-learn at start-up.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from llm_playground.cli.options import DEFAULT_CHOICE, ModelChoice, ModelOption, with_model_options
from llm_playground.cli.paths import check_output
from llm_playground.errors import InputError
from llm_playground.generate.params import SamplingParams
from llm_playground.model import DEFAULT_MODEL, LanguageModel
from llm_playground.workspace import atomic_open

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
explore_app = typer.Typer(help="Look inside the model: tokens, next-token probabilities, attention, embeddings, "
                               "perplexity, sampling experiments, a step-by-step walkthrough.",
                          no_args_is_help=True)

OutOption = Annotated[Optional[list[Path]], typer.Option(  # noqa: UP045 (typer needs Optional)
    "--out", "-o", help="write the chart (.html, .png) or its data (.json); repeatable")]
ChatOption = Annotated[bool, typer.Option(help="wrap the text in the chat template as a user turn (default: raw)")]
TextArgument = Annotated[str, typer.Argument(help="the text, or - to read standard input")]
FORMATS = (".html", ".png", ".json")


def _text(text: str) -> str:
    if text == "-":
        try:
            text = sys.stdin.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read standard input: {exc}", "pipe UTF-8 text into it") from exc
    if not text.strip():
        raise InputError("the text is empty", "give some text, or - to read it from standard input")
    return text


def _check_outputs(paths: list[Path] | None) -> list[Path]:
    """Checked before any work, so a typo in --out does not cost a model load."""
    for path in paths or []:
        check_output(path, "--out")
        if path.suffix.lower() not in FORMATS:
            raise InputError(f"cannot write {path}: unknown format {path.suffix or '(no extension)'!r}",
                             f"give --out a file ending in {', '.join(FORMATS)}")
    return list(paths or [])


def _write(paths: list[Path], figure: Callable[[], Any], data: Any) -> None:
    """Each output atomically; the figure is built only if a chart was asked for."""
    from llm_playground.explore import charts

    built = None
    for path in paths:
        suffix = path.suffix.lower()
        if suffix != ".json" and built is None:
            built = figure()
        payload = charts.render(built, data, suffix)
        with atomic_open(path, "wb") as handle:
            handle.write(payload)
        err.print(f"[dim]wrote {path} ({len(payload) / 1024:.0f} KiB)[/]")


def _ids(lm: LanguageModel, text: str, chat: bool) -> list[int]:
    from llm_playground.explore.common import encode
    from llm_playground.generate.prompt import build_prompt

    return encode(lm.tokenizer, build_prompt(lm.tokenizer, text, raw=not chat))


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*[c if isinstance(c, Text) else str(c) for c in row])
    return table


# --- tokens -------------------------------------------------------------------------------------------------

@explore_app.command("tokens")
def tokens_command(
    text: TextArgument,
    model: ModelOption = DEFAULT_MODEL,
    compare: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="a second tokenizer (model name, .gguf, model directory or tokenizer.json) to show side by side")] = None,
    output: OutOption = None,
) -> None:
    """How a tokenizer splits TEXT: tokens, ids, counts and token lengths (no model weights are loaded)."""
    from llm_playground.explore import charts, tokens

    paths, text = _check_outputs(output), _text(text)
    first = tokens.load_tokenizer(model)
    if compare is None:
        analysis = tokens.analyze(first, text)
        rows = [[r.position, r.id, r.token, r.text, r.length] for r in analysis.table.itertuples()]
        out.print(_table(f"{len(rows)} tokens", ["#", "id", "token", "text", "length"], rows))
        s = analysis.summary
        out.print(f"{s.tokens} tokens, {s.words} words, {s.characters} characters: {s.tokens_per_word} tokens per "
                  f"word, {s.characters_per_token} characters per token")
        out.print("token lengths: " + ", ".join(f"{r.length}:{r.count}" for r in analysis.histogram.itertuples()
                                                if r.count))
        _write(paths, lambda: charts.token_lengths(analysis), analysis)
        return
    names = [model, compare] if model != compare else [model, f"{compare} (again)"]
    comparison = tokens.compare(text, {names[0]: first, names[1]: tokens.load_tokenizer(compare)})
    s = comparison.summary
    out.print(_table("Tokenizers", ["tokenizer", "vocab", "tokens", "tokens/word", "chars/token"],
                     [[r.name, r.vocab_size, r.tokens, r.tokens_per_word, r.characters_per_token]
                      for r in s.itertuples()]))
    a, b = (comparison.analyses[n].table for n in names)
    rows = [[i, a["text"][i] if i < len(a) else "", b["text"][i] if i < len(b) else ""]
            for i in range(max(len(a), len(b)))]
    out.print(_table("Side by side", ["#", names[0], names[1]], rows))
    _write(paths, lambda: charts.tokenizer_comparison(comparison), comparison)


# --- next token ---------------------------------------------------------------------------------------------

@explore_app.command("next")
@with_model_options
def next_command(
    text: TextArgument,
    top: Annotated[int, typer.Option(help="how many tokens to list")] = 10,
    temperature: Annotated[float, typer.Option(help="divide the logits by this before softmax (0 = greedy)")] = 1.0,
    chat: ChatOption = False,
    choice: ModelChoice = DEFAULT_CHOICE,
    output: OutOption = None,
) -> None:
    """The most likely next tokens after TEXT: logits, probabilities with temperature, entropy."""
    from llm_playground.explore import charts
    from llm_playground.explore.next_token import next_token

    paths, text = _check_outputs(output), _text(text)
    lm = choice.load()
    start = time.perf_counter()
    result = next_token(lm, _ids(lm, text, chat), top, temperature)
    elapsed = time.perf_counter() - start
    rows = [[r.rank, r.text, r.id, f"{r.logit:.3f}", f"{r.probability:.4f}",
             Text("█" * round(30 * r.probability), style="cyan")] for r in result.table.itertuples()]
    out.print(_table(f"Next token after {result.prompt_tokens} tokens (temperature {temperature:g})",
                     ["#", "token", "id", "logit", "probability", ""], rows))
    out.print(f"entropy {result.entropy_nats:.3f} nats = {result.entropy_bits:.3f} bits; the top {len(rows)} hold "
              f"{result.top_mass:.1%} of the probability [dim]({elapsed * 1000:.0f} ms)[/]")
    _write(paths, lambda: charts.next_token(result), result)


# --- attention ----------------------------------------------------------------------------------------------

@explore_app.command("attention")
@with_model_options
def attention_command(
    text: TextArgument,
    layer: Annotated[int, typer.Option(help="layer to show (0 = first, -1 = last)")] = 0,
    head: Annotated[Optional[int], typer.Option(help="one head (default: every head of the layer)")] = None,  # noqa: UP045
    mean: Annotated[bool, typer.Option(help="the mean over the layer's heads")] = False,
    chat: ChatOption = False,
    choice: ModelChoice = DEFAULT_CHOICE,
    output: OutOption = None,
) -> None:
    """Attention weights of every layer and head from one forward pass; chart: one head, a layer's grid or the mean."""
    from llm_playground.explore import charts
    from llm_playground.explore.attention import attention, top_attended
    from llm_playground.explore.common import to_jsonable

    paths, text = _check_outputs(output), _text(text)
    if head is not None and mean:
        raise InputError("--head and --mean show different things", "give one of them")
    lm = choice.load()
    start = time.perf_counter()
    maps = attention(lm, _ids(lm, text, chat))
    elapsed = time.perf_counter() - start
    figure: Callable[..., Any]
    if head is not None:
        matrix, view, figure = maps.head(layer, head), f"layer {layer}, head {head}", charts.attention_head
        args: tuple = (maps, layer, head)
    else:
        matrix, view = maps.mean(layer), f"layer {layer}, mean of {maps.num_heads} heads"
        figure, args = (charts.attention_mean if mean else charts.attention_grid), (maps, layer)
    out.print(f"{maps.num_layers} layers × {maps.num_heads} heads × {len(maps.ids)}×{len(maps.ids)} weights from one "
              f"forward pass [dim]({elapsed * 1000:.0f} ms)[/]")
    table = top_attended(maps, matrix)
    out.print(_table(f"Where each token looks ({view})", ["#", "token", "attends most to (token@position weight)"],
                     [[r.position, r.token, r.attends_to] for r in table.itertuples()]))
    shown = maps.layer(layer) if head is None and not mean else matrix
    data = {"tokens": maps.tokens, "ids": maps.ids, "layer": layer, "head": head, "mean": mean,
            "shape": list(shown.shape), "weights": to_jsonable(shown)}
    _write(paths, lambda: figure(*args), data)


# --- embeddings ---------------------------------------------------------------------------------------------

@explore_app.command("embeddings")
@with_model_options
def embeddings_command(
    text: Annotated[Optional[str], typer.Argument(help="a text: project its tokens' hidden states")] = None,  # noqa: UP045
    words: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="comma-separated words: project their rows of the input embedding table instead")] = None,
    layer: Annotated[int, typer.Option(help="hidden states after this layer (0 = embeddings, -1 = last)")] = -1,
    method: Annotated[str, typer.Option(help="pca, tsne, umap or all (side by side)")] = "all",
    seed: Annotated[int, typer.Option(help="seed of the projections")] = 0,
    chat: ChatOption = False,
    choice: ModelChoice = DEFAULT_CHOICE,
    output: OutOption = None,
) -> None:
    """2-D projections (PCA, t-SNE, UMAP) of a text's hidden states at any layer, or of words' embeddings."""
    from llm_playground.explore import charts, embeddings

    paths = _check_outputs(output)
    if (text is None) == (words is None):
        raise InputError("give either a text or --words", "e.g. llmp explore embeddings --words king,queen,man,woman")
    methods = list(embeddings.METHODS) if method == "all" else [method]
    word_list = [w for w in (words or "").split(",") if w.strip()]
    points = len(word_list) if words is not None else None
    if points is not None:  # too few words is known before loading anything
        for m in methods:
            embeddings.check_method(m, points)
    lm = choice.load()
    if words is not None:
        vectors = embeddings.word_embeddings(lm, word_list)
        matrix, point_labels, title = vectors.vectors, vectors.words, "Input embeddings of words"
    else:
        states = embeddings.hidden_states(lm, _ids(lm, _text(text or ""), chat))
        matrix, point_labels = states.layer(layer), states.tokens
        title = f"Hidden states after layer {layer % (states.num_layers + 1)} of {states.num_layers}"
    start = time.perf_counter()
    points_frame = embeddings.projections(matrix, point_labels, methods, seed)
    elapsed = time.perf_counter() - start
    wide = points_frame.pivot(index="position", columns="method", values=["x", "y"])
    names = list(dict.fromkeys(points_frame["method"]))
    rows = [[p, point_labels[p], *[f"{wide[('x', n)][p]:.2f}, {wide[('y', n)][p]:.2f}" for n in names]]
            for p in range(len(point_labels))]
    out.print(_table(f"{title}: {matrix.shape[0]} points of {matrix.shape[1]} dimensions",
                     ["#", "label", *names], rows))
    note = " (UMAP compiles with numba on first use in a process: 10–30 s)" if "umap" in methods else ""
    out.print(f"[dim]projections took {elapsed:.1f} s{note}[/]")
    _write(paths, lambda: charts.embeddings(points_frame, title), {"title": title, "points": points_frame})


# --- perplexity ---------------------------------------------------------------------------------------------

def _coloured(result: Any) -> Text:
    """The text with each token coloured by surprisal: green (expected) → red (surprising)."""
    text = Text(result.first_token.replace("␣", " ").replace("↵", "\n"), style="dim")
    for token, bits in zip(result.table["token"], result.table["bits"], strict=True):
        style = "green" if bits < 2 else "yellow" if bits < 6 else "red" if bits < 12 else "bold red"
        text.append(token.replace("␣", " ").replace("↵", "\n"), style=style)
    return text


@explore_app.command("perplexity")
@with_model_options
def perplexity_command(
    texts: Annotated[Optional[list[str]], typer.Argument(  # noqa: UP045
        help="one text (per-token surprisal) or several (a comparison); - reads standard input")] = None,
    examples: Annotated[bool, typer.Option(help="compare a natural, a shuffled and a repetitive text")] = False,
    window: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="tokens per window for texts longer than it [default: min(context, 512)]")] = None,
    stride: Annotated[Optional[int], typer.Option(help="how far the window moves [default: window/2]")] = None,  # noqa: UP045
    choice: ModelChoice = DEFAULT_CHOICE,
    output: OutOption = None,
) -> None:
    """Perplexity and per-token surprisal (nats, bits) of a text, windowed past the context; or several texts."""
    from llm_playground.explore import charts
    from llm_playground.explore import perplexity as ppl
    from llm_playground.explore.common import encode

    paths = _check_outputs(output)
    given = [_text(t) for t in texts or []]
    if not given and not examples:
        raise InputError("give a text, several texts, or --examples", "e.g. llmp explore perplexity --examples")
    lm = choice.load()
    if len(given) == 1 and not examples:
        result = ppl.perplexity(lm, encode(lm.tokenizer, given[0]), window, stride)
        out.print(_coloured(result))
        worst = result.table.nlargest(min(10, len(result.table)), "nll")
        out.print(_table("Most surprising tokens", ["#", "token", "nats", "bits", "probability"],
                         [[r.position, r.token, f"{r.nll:.2f}", f"{r.bits:.2f}", f"{r.probability:.4f}"]
                          for r in worst.itertuples()]))
        out.print(f"perplexity {result.perplexity:.2f} = exp(mean NLL {result.mean_nll:.3f} nats); "
                  f"{result.bits_per_token:.2f} bits per token; {result.tokens} tokens, {result.windows} window(s) "
                  f"of {result.window} with stride {result.stride}")
        _write(paths, lambda: charts.surprisal(result), result)
        return
    named = ppl.example_texts() if examples else {}
    named |= {(t[:40] + "…" if len(t) > 40 else t): t for t in given}
    table = ppl.compare(lm, named, window, stride)
    out.print(_table("Perplexity", ["text", "tokens", "mean NLL (nats)", "bits/token", "perplexity"],
                     [[r.label, r.tokens, f"{r.mean_nll:.3f}", f"{r.bits_per_token:.2f}", f"{r.perplexity:.2f}"]
                      for r in table.itertuples()]))
    _write(paths, lambda: charts.perplexity_comparison(table), {"texts": named, "comparison": table})


# --- experiments --------------------------------------------------------------------------------------------

@explore_app.command("sweep")
@with_model_options
def sweep_command(
    prompt: TextArgument,
    kind: Annotated[str, typer.Option(help="temperature, sampling (top-k against top-p) or repetition "
                                           "(penalty 1.0/1.2/1.5)")] = "temperature",
    samples: Annotated[int, typer.Option(help="samples per setting")] = 5,
    max_new_tokens: Annotated[int, typer.Option(help="tokens per sample")] = 30,
    seed: Annotated[int, typer.Option(help="same seed, same outputs")] = 0,
    temperature: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="base temperature of the sampling and repetition sweeps [default: 1.0 and 0 (greedy)]")] = None,
    chat: ChatOption = False,
    choice: ModelChoice = DEFAULT_CHOICE,
    output: OutOption = None,
) -> None:
    """The same prompt under several sampling settings: outputs, distinct-1, distinct-2, unique outputs."""
    from llm_playground.explore import charts, experiments

    paths, prompt = _check_outputs(output), _text(prompt)
    if kind not in experiments.KINDS:
        raise InputError(f"unknown sweep {kind!r}", f"use one of: {', '.join(experiments.KINDS)}")
    default_temperature = {"temperature": 1.0, "sampling": 1.0, "repetition": 0.0}[kind]
    base = SamplingParams.create(n=samples, max_new_tokens=max_new_tokens, seed=seed,
                                 temperature=default_temperature if temperature is None else temperature)
    lm = choice.load()
    start = time.perf_counter()
    result = experiments.sweep(lm, _ids(lm, prompt, chat), kind, base)
    elapsed = time.perf_counter() - start
    out.print(_table(f"{kind.capitalize()} sweep: outputs", ["setting", "#", "text"],
                     [[r.setting, r.sample, repr(r.text)] for r in result.outputs.itertuples()]))
    out.print(_table("Diversity", ["setting", "samples", "distinct-1", "distinct-2", "unique", "mean tokens"],
                     [[r.setting, r.samples, f"{r.distinct_1:.3f}", f"{r.distinct_2:.3f}", r.unique_outputs,
                       f"{r.mean_tokens:.1f}"] for r in result.summary.itertuples()]))
    out.print(f"[dim]seed {seed}, {elapsed:.1f} s[/]")
    _write(paths, lambda: charts.sweep(result), result)


# --- walkthrough --------------------------------------------------------------------------------------------

@explore_app.command("walkthrough")
@with_model_options
def walkthrough_command(
    prompt: TextArgument,
    temperature: Annotated[float, typer.Option(help="sampling temperature (0 = greedy)")] = 0.7,
    top_k: Annotated[int, typer.Option(help="keep the k most likely tokens (0 = off)")] = 0,
    top_p: Annotated[float, typer.Option(help="keep the smallest set reaching probability p")] = 1.0,
    seed: Annotated[int, typer.Option(help="same seed, same token")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="tokens to generate")] = 10,
    layers: Annotated[bool, typer.Option(help="also keep every layer's hidden state (one more forward pass)")]
    = False,
    chat: ChatOption = False,
    choice: ModelChoice = DEFAULT_CHOICE,
    output: OutOption = None,
) -> None:
    """One request step by step: text → tokens → embeddings → layers → logits → softmax → top-5 → sample → text."""
    from llm_playground.explore import charts
    from llm_playground.explore.walkthrough import walkthrough

    paths, prompt = _check_outputs(output), _text(prompt)
    params = SamplingParams.create(temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                                   max_new_tokens=max_new_tokens)
    lm = choice.load()
    result = walkthrough(lm, prompt, _ids(lm, prompt, chat), params, layers=layers)
    out.print(_table(f"Walkthrough ({lm.info.name})", ["#", "step", "what happens"],
                     [[i, name, detail] for i, (name, detail) in enumerate(result.steps(), start=1)]))
    t = result.timings_ms
    extra = f", every layer's hidden states {t['layers_pass']:.0f} ms" if "layers_pass" in t else ""
    out.print(f"[dim]prefill and generation {t['generation']:.0f} ms{extra}[/]")
    _write(paths, lambda: charts.walkthrough(result), result)


def register(app: typer.Typer) -> None:
    app.add_typer(explore_app, name="explore")
