"""Options shared by several commands: the model to load and every sampling parameter.

Sampling options are generated from `SamplingParams`' fields so the CLI, the web app and the API
can never disagree about names, defaults or ranges.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Optional, TypeVar

import typer

from llm_playground.generate.params import SamplingParams
from llm_playground.model import DEFAULT_MODEL, LanguageModel, load_model

F = TypeVar("F", bound=Callable[..., Any])

ModelOption = Annotated[str, typer.Option("--model", "-m", help="model name, .gguf file or model directory")]
ThreadsOption = Annotated[int | None, typer.Option(help="torch threads (default: half the cores, or LLMP_THREADS)")]


@dataclass(frozen=True)
class ModelChoice:
    """Which model to load and how: what `--model`, `--dtype`, `--backend` and `--threads` say."""

    model: str = DEFAULT_MODEL
    dtype: str = "float32"
    backend: str = "auto"
    threads: int | None = None

    def load(self) -> LanguageModel:
        return load_model(self.model, dtype=self.dtype, backend=self.backend, threads=self.threads)


DEFAULT_CHOICE = ModelChoice()  # a placeholder default: `with_model_options` replaces the parameter

_MODEL_HELP = {
    "model": "model name, .gguf file or model directory",
    "dtype": "weights' dtype: float32, float16, bfloat16, or int8/int4 (quantized, native backend: fastest on CPU)",
    "backend": "auto, native, transformers or llamacpp",
    "threads": "torch threads (default: half the cores, or LLMP_THREADS)",
}
_TYPES: dict[str, Any] = {"stop": Optional[list[str]], "threads": Optional[int]}  # noqa: UP045


def _replace_parameter(func: F, name: str, added: list[inspect.Parameter], build: Callable[[dict], Any]) -> F:
    """Swap `func`'s parameter `name` for the `added` options; the wrapper builds its value from them."""
    signature = inspect.signature(func)
    # Resolve the wrapped function's (string) annotations here: typer would otherwise look them up in
    # this module and lose their `Annotated` option declarations.
    hints = typing.get_type_hints(func, include_extras=True)
    kept = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
            if p.name != name]
    names = [p.name for p in added]

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        return func(**{name: build({n: kwargs.pop(n) for n in names})}, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=kept + added)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def _option(name: str, annotation: Any, option: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def with_model_options(func: F) -> F:
    """Add `--model/-m`, `--dtype`, `--backend`, `--threads` and pass them as `choice: ModelChoice`."""
    added = []
    for field in dataclasses.fields(ModelChoice):
        flags = ("--model", "-m") if field.name == "model" else (f"--{field.name}",)
        option = typer.Option(field.default, *flags, help=_MODEL_HELP[field.name], rich_help_panel="Model")
        added.append(_option(field.name, _TYPES.get(field.name, str), option))
    return _replace_parameter(func, "choice", added, lambda values: ModelChoice(**values))


def with_sampling_options(func: F) -> F:
    """Add one `--option` per `SamplingParams` field and pass the validated object as `sampling`."""
    added = []
    for name, info in SamplingParams.model_fields.items():
        flag = "--" + name.replace("_", "-")
        annotation = _TYPES.get(name) or Optional[info.annotation]  # noqa: UP045
        if info.annotation is bool:
            annotation, flag = Optional[bool], f"{flag}/--no-{flag[2:]}"  # noqa: UP045
        default = info.default if info.default is not None and not isinstance(info.default, tuple) else None
        help_text = f"{info.description} [default: {default}]" if default is not None else info.description
        option = typer.Option(None, flag, help=help_text, rich_help_panel="Sampling", show_default=False)
        added.append(_option(name, annotation, option))
    return _replace_parameter(func, "sampling", added, lambda values: SamplingParams.create(**values))
