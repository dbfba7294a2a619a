"""Tokenizers: the `Tokenizer` protocol and its implementations."""

from llm_playground.tokenizer.base import Tokenizer
from llm_playground.tokenizer.hf import HFTokenizer

__all__ = ["HFTokenizer", "Tokenizer"]
