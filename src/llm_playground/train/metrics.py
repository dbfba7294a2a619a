"""`runs/NAME/metrics.jsonl` (one JSON object a line) and the loss-curve chart drawn from it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from llm_playground.errors import PlaygroundError
from llm_playground.workspace import atomic_open

log = logging.getLogger(__name__)


class MetricsLog:
    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        if resume_step is None:
            self.path.unlink(missing_ok=True)
        else:
            # Lines past the checkpoint belong to steps that will be run again: dropped, so the log of a
            # resumed run reads like the log of an uninterrupted one.
            kept = [r for r in read_metrics(path) if r["step"] <= resume_step]
            with atomic_open(path) as handle:
                handle.writelines(json.dumps(r) + "\n" for r in kept)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a crash
    return records


def loss_figure(records: list[dict[str, Any]], title: str):  # -> plotly Figure (imported lazily)
    import plotly.graph_objects as go

    train = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[r["step"] for r in train], y=[r["loss"] for r in train], mode="lines",
                             name="train (batch)", line={"width": 1}, opacity=0.6))
    fig.add_trace(go.Scatter(x=[r["step"] for r in evals], y=[r["train_loss"] for r in evals],
                             mode="lines+markers", name="train (eval)"))
    fig.add_trace(go.Scatter(x=[r["step"] for r in evals], y=[r["val_loss"] for r in evals],
                             mode="lines+markers", name="validation"))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss (nats per token)", width=900, height=500)
    return fig


def write_loss_chart(metrics: Path, out: Path, title: str) -> Path | None:
    """loss.png (through kaleido and Chromium); loss.html when PNG export is unavailable."""
    from llm_playground.explore import charts

    fig = loss_figure(read_metrics(metrics), title)
    try:
        payload = charts.to_png(fig)
    except PlaygroundError as exc:
        log.warning("loss chart as HTML instead of PNG: %s", exc)
        out = out.with_suffix(".html")
        payload = charts.to_html(fig).encode("utf-8")
    except Exception as exc:  # kaleido's browser can fail in many ways; a chart is never worth a crash
        log.warning("could not draw the loss chart: %s", exc)
        return None
    with atomic_open(out, "wb") as handle:
        handle.write(payload)
    return out
