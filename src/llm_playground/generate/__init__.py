"""Generation: sampling parameters, logits processors, stopping rules, the loop, traces."""

import sys
import types
from typing import Any

from llm_playground.generate.loop import Generation, GenerationResult, StepEvent, complete, generate
from llm_playground.generate.params import SamplingParams

__all__ = ["Generation", "GenerationResult", "SamplingParams", "StepEvent", "complete", "generate"]


class _CallableModule(types.ModuleType):
    """`llm_playground.generate` is this package and, called, the loop's `generate`.

    The facade exports `generate` (the function) beside the subpackage of the same name; Python sets a
    package's attribute to its subpackage whenever that is imported, so whichever came first would win.
    Making the package callable gives one object that is right both ways, in any import order.
    """

    __wrapped__ = staticmethod(generate)  # inspect.signature(llm_playground.generate) is the function's

    def __call__(self, *args: Any, **kwargs: Any) -> Generation:
        return generate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
