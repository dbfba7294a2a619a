"""Generation: sampling parameters, logits processors, stopping rules, the loop, traces."""

from llm_playground.generate.loop import Generation, GenerationResult, StepEvent, complete, generate
from llm_playground.generate.params import SamplingParams

__all__ = ["Generation", "GenerationResult", "SamplingParams", "StepEvent", "complete", "generate"]
