"""Models: the `LanguageModel` protocol, its backends and the registry (name or path → model)."""

from llm_playground.model.base import KVCache, LanguageModel, ModelInfo, get_logits_from_input_ids
from llm_playground.model.registry import DEFAULT_MODEL, list_models, load_model

__all__ = ["DEFAULT_MODEL", "KVCache", "LanguageModel", "ModelInfo", "get_logits_from_input_ids",
           "list_models", "load_model"]
