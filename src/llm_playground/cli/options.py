"""Options shared by several commands: the model to load and every sampling parameter.

Sampling options are generated from `SamplingParams`' fields so the CLI, the web app and the API
can never disagree about names, defaults or ranges.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any, Optional, TypeVar

import typer

from llm_playground.generate.params import SamplingParams
from llm_playground.model import DEFAULT_MODEL, LanguageModel, load_model

F = TypeVar("F", bound=Callable[..., Any])

ModelOption = Annotated[str, typer.Option("--model", "-m", help="model name, .gguf file or model directory")]
DtypeOption = Annotated[str, typer.Option(help="weights' dtype: float32, float16 (faster decoding on CPU) or bfloat16")]
BackendOption = Annotated[str, typer.Option(help="auto, native, transformers or llamacpp")]
ThreadsOption = Annotated[int | None, typer.Option(help="torch threads (default: half the cores, or "
                                                           "LLMP_THREADS)")]  # noqa: UP045 (typer needs it)


def open_model(model: str = DEFAULT_MODEL, dtype: str = "float32", backend: str = "auto",
               threads: int | None = None) -> LanguageModel:
    return load_model(model, dtype=dtype, backend=backend, threads=threads)


_TYPES: dict[str, Any] = {"stop": Optional[list[str]]}  # noqa: UP045


def with_sampling_options(func: F) -> F:
    """Add one `--option` per `SamplingParams` field and pass the validated object as `sampling`."""
    fields = SamplingParams.model_fields
    added = []
    for name, info in fields.items():
        flag = "--" + name.replace("_", "-")
        annotation = _TYPES.get(name) or Optional[info.annotation]  # noqa: UP045
        if info.annotation is bool:
            annotation, flag = Optional[bool], f"{flag}/--no-{flag[2:]}"  # noqa: UP045
        default = info.default if info.default is not None and not isinstance(info.default, tuple) else None
        help_text = f"{info.description} [default: {default}]" if default is not None else info.description
        option = typer.Option(None, flag, help=help_text, rich_help_panel="Sampling", show_default=False)
        added.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                       annotation=annotation))
    signature = inspect.signature(func)
    # Resolve the wrapped function's (string) annotations here: typer would otherwise look them up in
    # this module and lose their `Annotated` option declarations.
    hints = typing.get_type_hints(func, include_extras=True)
    kept = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
            if p.name != "sampling"]

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in fields}
        return func(sampling=SamplingParams.create(**values), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=kept + added)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
