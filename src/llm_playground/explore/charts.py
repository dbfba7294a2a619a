"""Plotly figures drawn only from the analyses' data, and their export as HTML, PNG or JSON.

Token axes are numeric positions with the tokens as tick labels: plotly merges equal category labels,
and a text repeats tokens ("the" twice) all the time.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from llm_playground.errors import InputError, PlaygroundError
from llm_playground.explore.attention import AttentionMaps
from llm_playground.explore.common import to_jsonable
from llm_playground.explore.experiments import Sweep
from llm_playground.explore.next_token import NextToken
from llm_playground.explore.perplexity import Perplexity
from llm_playground.explore.tokens import TokenAnalysis, TokenizerComparison
from llm_playground.explore.walkthrough import Walkthrough

FORMATS = (".html", ".png", ".json")
MAX_TICKS = 48  # beyond this many tokens, axis labels overlap: show positions only


def _token_axis(tokens: list[str], angle: int = -60) -> dict[str, Any]:
    if len(tokens) > MAX_TICKS:
        return {"title": "position"}
    return {"tickmode": "array", "tickvals": list(range(len(tokens))), "ticktext": tokens, "tickangle": angle}


# --- tokens -------------------------------------------------------------------------------------------------

def token_lengths(analysis: TokenAnalysis) -> go.Figure:
    fig = go.Figure(go.Bar(x=analysis.histogram["length"], y=analysis.histogram["count"]))
    s = analysis.summary
    fig.update_layout(title=f"Token lengths: {s.tokens} tokens, {s.tokens_per_word} per word, "
                            f"{s.characters_per_token} characters per token",
                      xaxis_title="characters in the token", yaxis_title="tokens")
    return fig


def tokenizer_comparison(comparison: TokenizerComparison) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("tokens for the same text", "token lengths"))
    summary = comparison.summary
    fig.add_trace(go.Bar(x=summary["name"], y=summary["tokens"], showlegend=False), row=1, col=1)
    for name, analysis in comparison.analyses.items():
        fig.add_trace(go.Bar(x=analysis.histogram["length"], y=analysis.histogram["count"], name=name), row=1, col=2)
    fig.update_layout(title="Two tokenizers on the same text", barmode="group")
    return fig


# --- next token ---------------------------------------------------------------------------------------------

def next_token(result: NextToken) -> go.Figure:
    table = result.table.iloc[::-1]  # most likely on top of a horizontal bar chart
    fig = go.Figure(go.Bar(
        x=table["probability"], y=[f"{t}  (#{r})" for t, r in zip(table["text"], table["rank"], strict=True)],
        orientation="h", text=[f"{p:.3f}" for p in table["probability"]], textposition="outside",
        customdata=np.stack([table["id"], table["logit"]], axis=1),
        hovertemplate="%{y}<br>p=%{x:.4f}<br>id %{customdata[0]}<br>logit %{customdata[1]:.3f}<extra></extra>"))
    fig.update_layout(title=f"Next token (temperature {result.temperature:g}, entropy {result.entropy_bits:.2f} bits)",
                      xaxis_title="probability", height=max(300, 28 * len(table) + 120))
    return fig


# --- attention ----------------------------------------------------------------------------------------------

def _heatmap(matrix: np.ndarray, tokens: list[str], showscale: bool = True) -> go.Heatmap:
    positions = list(range(len(tokens)))
    if len(tokens) > MAX_TICKS:  # T² hover strings would bloat the file; positions will do
        return go.Heatmap(z=matrix, x=positions, y=positions, zmin=0, zmax=1, colorscale="Blues",
                          showscale=showscale, hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>")
    return go.Heatmap(z=matrix, x=positions, y=positions, zmin=0, zmax=1, colorscale="Blues", showscale=showscale,
                      customdata=np.array([[f"{q}@{i} → {k}@{j}" for j, k in enumerate(tokens)]
                                           for i, q in enumerate(tokens)], dtype=object),
                      hovertemplate="%{customdata}<br>weight %{z:.3f}<extra></extra>")


def _square(fig: go.Figure, tokens: list[str], title: str) -> go.Figure:
    fig.update_layout(title=title, xaxis={**_token_axis(tokens), "side": "bottom"},
                      yaxis={**_token_axis(tokens, angle=0), "autorange": "reversed"}, width=760, height=720)
    fig.update_xaxes(title_text="attended token (key)")
    fig.update_yaxes(title_text="token (query)")
    return fig


def attention_head(maps: AttentionMaps, layer: int, head: int) -> go.Figure:
    fig = go.Figure(_heatmap(maps.head(layer, head), maps.tokens))
    layer, head = layer % maps.num_layers, head % maps.num_heads
    return _square(fig, maps.tokens, f"Attention, layer {layer}, head {head}")


def attention_mean(maps: AttentionMaps, layer: int) -> go.Figure:
    fig = go.Figure(_heatmap(maps.mean(layer), maps.tokens))
    return _square(fig, maps.tokens, f"Attention, layer {layer % maps.num_layers}, mean of {maps.num_heads} heads")


def attention_grid(maps: AttentionMaps, layer: int) -> go.Figure:
    heads = maps.layer(layer)
    cols = math.ceil(math.sqrt(len(heads)))
    rows = math.ceil(len(heads) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"head {h}" for h in range(len(heads))],
                        horizontal_spacing=0.03, vertical_spacing=0.05)
    # Token labels only on the outer edges, and only while they stay readable in a small square.
    labelled = len(maps.tokens) <= 24
    hidden = {"showticklabels": False}
    for h, matrix in enumerate(heads):
        row, col = divmod(h, cols)
        fig.add_trace(_heatmap(matrix, maps.tokens, showscale=h == 0), row=row + 1, col=col + 1)
        bottom, left = row == rows - 1 or h + cols >= len(heads), col == 0
        fig.update_xaxes(**(_token_axis(maps.tokens) if labelled and bottom else hidden), row=row + 1, col=col + 1)
        fig.update_yaxes(**(_token_axis(maps.tokens, angle=0) if labelled and left else hidden),
                         autorange="reversed", row=row + 1, col=col + 1)
    fig.update_layout(title=f"Attention, layer {layer % maps.num_layers}: every head", width=260 * cols + 200,
                      height=260 * rows + 200)
    return fig


# --- embeddings ---------------------------------------------------------------------------------------------

def embeddings(points: pd.DataFrame, title: str) -> go.Figure:
    """Side by side, one panel per projection method; labels on the points, colour = position."""
    methods = list(dict.fromkeys(points["method"]))
    fig = make_subplots(rows=1, cols=len(methods), subplot_titles=methods)
    top = int(points["position"].max()) if len(points) else 0
    for col, method in enumerate(methods, start=1):
        part = points[points["method"] == method]
        fig.add_trace(go.Scatter(
            x=part["x"], y=part["y"], mode="markers+text", text=part["label"], textposition="top center",
            marker={"color": part["position"], "colorscale": "Viridis", "cmin": 0, "cmax": max(top, 1), "size": 9,
                    "showscale": col == 1, "colorbar": {"title": "position"}},
            hovertemplate="%{text} (position %{marker.color})<extra></extra>", showlegend=False), row=1, col=col)
    fig.update_layout(title=title, width=480 * len(methods) + 80, height=520)
    return fig


# --- perplexity ---------------------------------------------------------------------------------------------

def surprisal(result: Perplexity, per_row: int = 12) -> go.Figure:
    """The text as coloured tokens: one cell per token, colour = surprisal in bits (the first token, never
    predicted, stays blank)."""
    table = result.table
    count = len(table) + 1
    rows = math.ceil(count / per_row)
    pad = rows * per_row - count
    bits = np.concatenate([[np.nan], table["bits"].to_numpy(), np.full(pad, np.nan)]).reshape(rows, per_row)
    text = np.array([result.first_token, *table["token"], *[""] * pad], dtype=object).reshape(rows, per_row)
    fig = go.Figure(go.Heatmap(z=bits, text=text, texttemplate="%{text}", colorscale="YlOrRd", zmin=0,
                               colorbar={"title": "bits"}, hovertemplate="%{text}: %{z:.2f} bits<extra></extra>",
                               xgap=2, ygap=2))
    fig.update_layout(title=f"Surprisal per token: perplexity {result.perplexity:.2f} "
                            f"({result.bits_per_token:.2f} bits per token, {result.windows} window(s))",
                      xaxis={"visible": False}, yaxis={"visible": False, "autorange": "reversed"}, plot_bgcolor="white",
                      width=1000, height=60 * rows + 160)
    return fig


def perplexity_comparison(table: pd.DataFrame) -> go.Figure:
    fig = go.Figure(go.Bar(x=table["label"], y=table["perplexity"], text=[f"{p:.1f}" for p in table["perplexity"]],
                           textposition="outside"))
    fig.update_layout(title="Perplexity of several texts (lower = less surprising)", yaxis_type="log",
                      yaxis_title="perplexity (log scale)")
    return fig


# --- experiments --------------------------------------------------------------------------------------------

def sweep(result: Sweep) -> go.Figure:
    s = result.summary
    fig = make_subplots(rows=1, cols=2, subplot_titles=("distinct n-grams (of all n-grams)", "unique outputs"))
    fig.add_trace(go.Bar(x=s["setting"], y=s["distinct_1"], name="distinct-1"), row=1, col=1)
    fig.add_trace(go.Bar(x=s["setting"], y=s["distinct_2"], name="distinct-2"), row=1, col=1)
    fig.add_trace(go.Bar(x=s["setting"], y=s["unique_outputs"], name="unique outputs",
                         text=[f"{u}/{n}" for u, n in zip(s["unique_outputs"], s["samples"], strict=True)],
                         textposition="outside"), row=1, col=2)
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_layout(title=f"{result.kind.capitalize()} sweep", barmode="group", width=1100, height=480)
    return fig


# --- walkthrough --------------------------------------------------------------------------------------------

def walkthrough(result: Walkthrough) -> go.Figure:
    """The top-5 next tokens; with the layers pass, beside them the hidden-state norm through the layers."""
    panels = ["top-5 next tokens"] + (["hidden-state norm, last position"] if result.layer_norms else [])
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels)
    top = result.top.iloc[::-1]
    fig.add_trace(go.Bar(x=top["probability"], y=top["text"], orientation="h", showlegend=False,
                         text=[f"{p:.3f}" for p in top["probability"]], textposition="outside"), row=1, col=1)
    if result.layer_norms:
        fig.add_trace(go.Scatter(x=list(range(len(result.layer_norms))), y=result.layer_norms, mode="lines+markers",
                                 showlegend=False), row=1, col=2)
        fig.update_xaxes(title_text="layer (0 = embeddings; the last one after the final norm)", row=1, col=2)
    fig.update_layout(title=f"Walkthrough: sampled {result.sampled_text!r} (p={result.sampled_probability:.3f})",
                      width=550 * len(panels), height=450)
    return fig


# --- export -------------------------------------------------------------------------------------------------

def to_html(fig: go.Figure) -> str:
    # plotly.js inline (about 4.5 MB): the file must open offline, where a CDN link would show nothing.
    return fig.to_html(include_plotlyjs=True, full_html=True)


def to_png(fig: go.Figure) -> bytes:
    """PNG through kaleido, which drives a headless Chrome or Chromium (Debian's `chromium` package will do)."""
    try:
        import kaleido
        from kaleido.errors import ChromeNotFoundError
    except ImportError:
        raise PlaygroundError("PNG export needs the kaleido package", "pip install kaleido, or write .html") from None
    # Debian's /usr/bin/chromium is a shell wrapper that prints a harmless error on stderr; the binary
    # behind it is what kaleido needs. BROWSER_PATH is kaleido's documented override: a user's setting wins.
    if "BROWSER_PATH" not in os.environ and Path("/usr/lib/chromium/chromium").is_file():
        os.environ["BROWSER_PATH"] = "/usr/lib/chromium/chromium"
    layout = fig.layout
    opts = {"format": "png", "width": layout.width or 1000, "height": layout.height or 600, "scale": 1}
    try:
        # mathjax=False: kaleido would otherwise load MathJax from a CDN, which fails offline.
        return kaleido.calc_fig_sync(fig.to_dict(), opts=opts, kopts={"mathjax": False})
    except ChromeNotFoundError:
        raise PlaygroundError("PNG export needs Chrome or Chromium, and none was found",
                              "install it (Debian: apt-get install chromium) or set BROWSER_PATH, "
                              "or write .html") from None


def to_json(data: Any) -> str:
    return json.dumps(to_jsonable(data), ensure_ascii=False, indent=1)


def render(fig: go.Figure, data: Any, suffix: str) -> bytes:
    """The bytes of an output file: the chart as .html or .png, or the data behind it as .json."""
    if suffix == ".html":
        return to_html(fig).encode("utf-8")
    if suffix == ".png":
        return to_png(fig)
    if suffix == ".json":
        return to_json(data).encode("utf-8")
    raise InputError(f"cannot write {suffix or 'a file without an extension'}",
                     f"give --out a file ending in {', '.join(FORMATS)}")
