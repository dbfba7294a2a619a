"""The build flow's data stages: collect a corpus, train a tokenizer on it, prepare token arrays; and status."""

from __future__ import annotations

from llm_playground.data.corpus import CollectRequest, WikipediaRequest, collect, read_documents
from llm_playground.data.prepared import Prepared, load_prepared, prepare
from llm_playground.data.status import PipelineStatus, Stage, pipeline_status
from llm_playground.data.vocab import train_tokenizer

__all__ = ["CollectRequest", "PipelineStatus", "Prepared", "Stage", "WikipediaRequest", "collect", "load_prepared",
           "pipeline_status", "prepare", "read_documents", "train_tokenizer"]
