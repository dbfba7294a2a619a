"""LLM Playground: build, run, inspect and use small language models on your own machine."""

__version__ = "0.1.0"
