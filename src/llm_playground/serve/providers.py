"""Providers by name, and what an answer costs.

Each preset is an OpenAI-compatible endpoint and the environment variable that usually holds its key
(OpenAI, Anthropic's and Google's OpenAI-compatibility endpoints, and the local servers: Ollama, vLLM,
llama.cpp's `llama-server`). A URL instead of a name is taken as given.

Costs are estimates from a price table: the workspace's `prices.json` when there is one, else the bundled
list prices with the date they were copied (nothing is fetched: no network is assumed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from llm_playground.errors import InputError


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str
    key_env: str | None  # None: a local server that needs no key
    example_model: str


PROVIDERS: dict[str, Provider] = {p.name: p for p in [
    Provider("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "gpt-4o-mini"),
    Provider("anthropic", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY", "claude-haiku-4-5"),
    Provider("google", "https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY",
             "gemini-2.5-flash"),
    Provider("ollama", "http://localhost:11434/v1", None, "llama3.2"),
    Provider("vllm", "http://localhost:8000/v1", None, "Qwen/Qwen2.5-1.5B-Instruct"),
    Provider("llama.cpp", "http://localhost:8080/v1", None, "default"),
]}


@dataclass(frozen=True)
class Endpoint:
    """Where to send a chat and which variable holds the key (`provider` is None for a bare URL)."""

    base_url: str
    key_env: str | None
    provider: str | None


def resolve(provider: str, base_url: str | None = None, key_env: str | None = None) -> Endpoint:
    """A preset's name or a URL, with `base_url` and `key_env` overriding the preset's."""
    name = provider.strip().lower()
    if name in PROVIDERS:
        preset = PROVIDERS[name]
        return Endpoint(base_url or preset.base_url, key_env if key_env is not None else preset.key_env, preset.name)
    if "/" in provider or ":" in provider or "." in provider:
        return Endpoint(base_url or provider.strip(), key_env, None)
    raise InputError(f"unknown provider {provider!r}",
                     f"use one of {', '.join(PROVIDERS)}, or the endpoint's URL (e.g. http://127.0.0.1:8000/v1)")


@dataclass(frozen=True)
class Prices:
    models: dict[str, dict[str, float]]  # model → {"input": …, "output": …} per 1M tokens
    currency: str
    source: str  # where the table came from, with its date

    def price(self, model: str) -> dict[str, float] | None:
        """The model's prices; a dated name (gpt-4o-mini-2024-07-18) takes its family's (the longest prefix)."""
        name = model.strip().lower().rsplit("/", 1)[-1]
        if name in self.models:
            return self.models[name]
        prefixes = [key for key in self.models if name.startswith(key)]
        return self.models[max(prefixes, key=len)] if prefixes else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """The estimated cost of one answer, or None when the table has no price for the model."""
        price = self.price(model)
        if price is None:
            return None
        return (prompt_tokens * price.get("input", 0.0) + completion_tokens * price.get("output", 0.0)) / 1e6


def load_prices(path: Path | None = None) -> Prices:
    """The workspace's table at `path` when it exists, else the bundled one."""
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path} is not a readable JSON price table ({exc})",
                             'fix it: {"models": {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}}') from None
        source = str(path)
    else:
        data = json.loads((resources.files("llm_playground.serve") / "prices.json").read_text(encoding="utf-8"))
        source = f"bundled list prices of {data.get('date', '?')}"
    return Prices(_models(data, path), str(data.get("currency", "USD")), source)


def _models(data: Any, path: Path | None) -> dict[str, dict[str, float]]:
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise InputError(f"{path} has no \"models\" table", 'give {"models": {"NAME": {"input": …, "output": …}}}')
    table = {}
    for name, price in models.items():
        numbers = isinstance(price, dict) and all(isinstance(price.get(k, 0), int | float) for k in ("input", "output"))
        if not numbers:
            raise InputError(f"{path}: the price of {name!r} is not {{\"input\": number, \"output\": number}}",
                             "give both prices in the table's currency per 1M tokens")
        table[str(name).lower()] = {k: float(price.get(k, 0.0)) for k in ("input", "output")}
    return table


def format_cost(cost: float | None, currency: str = "USD") -> str:
    if cost is None:
        return "no price known"
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{symbol}{cost:.6f}" if cost < 0.01 else f"{symbol}{cost:.4f}"
