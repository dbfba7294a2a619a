"""An answer's tokens coloured by the probability the model gave each one, with its top alternatives on hover.

The steps come from the generation loop's `StepEvent`s, stored in the message's meta as
`{"id", "t" (text), "p" (probability), "alt": [[id, text, p], ...]}`.
"""

from __future__ import annotations

import html
from typing import Any


def colour(prob: float) -> str:
    """Red for an unlikely token, through yellow, to green for a near-certain one."""
    return f"hsla({120 * max(0.0, min(1.0, prob)):.0f}, 75%, 55%, 0.45)"


def alternatives_text(step: dict[str, Any]) -> str:
    return "\n".join(f"{text!r}: {p:.3f}" for _, text, p in step.get("alt", []))


def token_html(steps: list[dict[str, Any]]) -> str:
    """The answer as spans, one per token; `title` shows the alternatives when the pointer rests on one."""
    spans = []
    for index, step in enumerate(steps):
        text = step.get("t", "")
        shown = html.escape(text).replace("\n", "↵<br>") or "·"
        title = html.escape(f"#{index} p={step.get('p', 0):.3f}\n{alternatives_text(step)}", quote=True)
        style = f"background:{colour(step.get('p', 0))};border-radius:3px;padding:0 1px;white-space:pre-wrap"
        if step.get("forced"):
            style += ";outline:1px dashed #555"
        spans.append(f'<span class="llmp-token" title="{title}" style="{style}">{shown}</span>')
    return "<div style='line-height:1.9'>" + "".join(spans) + "</div>"


def label(index: int, step: dict[str, Any]) -> str:
    return f"#{index} {step.get('t', '')!r} (p={step.get('p', 0):.3f})"
