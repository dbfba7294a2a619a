"""LLM Playground: build, run, inspect and use small language models on your own machine.

The few names a user imports, from one place (litgpt's `__init__` is the model)::

    from llm_playground import load_model, generate, SamplingParams, build_prompt, call_functions

They are imported lazily (PEP 562 `__getattr__`): `import llm_playground` stays cheap and loads no torch,
so the CLI's `--help` and the tests that only need a version or an error class stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name → the module that defines it. The facade adds no code of its own: each name is the library's.
_FACADE: dict[str, str] = {
    # models
    "load_model": "llm_playground.model.registry",
    "list_models": "llm_playground.model.registry",
    "LanguageModel": "llm_playground.model.base",
    # generation
    "SamplingParams": "llm_playground.generate.params",
    "generate": "llm_playground",  # the subpackage, callable as the loop's generate (see generate/__init__.py)
    "complete": "llm_playground.generate.loop",
    "StepEvent": "llm_playground.generate.loop",
    "GenerationResult": "llm_playground.generate.loop",
    "build_prompt": "llm_playground.generate.prompt",
    # function calling
    "load_functions": "llm_playground.functions.schema",
    "call_functions": "llm_playground.functions.calling",
    "ToolCall": "llm_playground.functions.calling",
    # errors
    "PlaygroundError": "llm_playground.errors",
}

# Spelled out (not derived from _FACADE) so linters and type checkers read it; tests/test_docs.py checks
# that the two agree.
__all__ = [
    "GenerationResult", "LanguageModel", "PlaygroundError", "SamplingParams", "StepEvent", "ToolCall",
    "__version__", "build_prompt", "call_functions", "complete", "generate", "list_models", "load_functions",
    "load_model",
]

if TYPE_CHECKING:  # static checkers and IDEs see the real names
    from llm_playground.errors import PlaygroundError
    from llm_playground.functions.calling import ToolCall, call_functions
    from llm_playground.functions.schema import load_functions
    from llm_playground.generate.loop import GenerationResult, StepEvent, complete, generate
    from llm_playground.generate.params import SamplingParams
    from llm_playground.generate.prompt import build_prompt
    from llm_playground.model.base import LanguageModel
    from llm_playground.model.registry import list_models, load_model


def __getattr__(name: str) -> Any:
    module = _FACADE.get(name)
    if module is None:
        raise AttributeError(f"module 'llm_playground' has no attribute {name!r}")
    value = importlib.import_module(f"{module}.{name}") if module == __name__ else getattr(
        importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
