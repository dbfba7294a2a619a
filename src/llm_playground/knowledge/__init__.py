"""Knowledge base: documents → chunks → embeddings → store; hybrid search; grounded answers with citations."""

from llm_playground.knowledge.embedder import (
           Embedder,
           LanguageModelEmbedder,
           MiniLMEmbedder,
           ProviderEmbedder,
           load_embedder,
)
from llm_playground.knowledge.kb import AddReport, KnowledgeBase, open_kb
from llm_playground.knowledge.store import Hit

__all__ = ["AddReport", "Embedder", "Hit", "KnowledgeBase", "LanguageModelEmbedder", "MiniLMEmbedder",
           "ProviderEmbedder", "load_embedder", "open_kb"]
