"""`llmp pipeline`'s data stages: whichever of collect → tokenizer → prepare has no output yet, with defaults.

The stages belong to `llm_playground.data`; this module only decides which are missing and calls them.
"""

from __future__ import annotations

from llm_playground.errors import InputError
from llm_playground.workspace import Workspace

STAGES = ("collect", "tokenizer", "prepare")
DEFAULT_VOCAB = 4096


def missing_data_stages(workspace: Workspace) -> list[str]:
    missing = []
    if not workspace.corpus_path.is_file():
        missing.append("collect")
    if missing or not workspace.tokenizer_path.is_file():
        missing.append("tokenizer")
    if missing or not (workspace.meta_path.is_file() and workspace.train_bin.is_file()
                       and workspace.val_bin.is_file()):
        missing.append("prepare")
    return missing


def run_data_stage(workspace: Workspace, stage: str) -> str:
    """Run one stage with its defaults; a one-line summary of what it made."""
    if stage == "collect":
        try:
            from llm_playground.data.corpus import CollectRequest, collect
        except ImportError:
            raise InputError(f"no corpus at {workspace.corpus_path}", "run: llmp data collect") from None
        manifest = collect(workspace, CollectRequest(sources=("shakespeare",)))
        return f"{workspace.corpus_path} ({manifest.get('documents', '?')} documents)"
    if stage == "tokenizer":
        from llm_playground.tokenizer import train_sentencepiece

        tokenizer = train_sentencepiece(workspace.corpus_path, workspace.tokenizer_path, vocab_size=DEFAULT_VOCAB)
        return f"{workspace.tokenizer_path} (BPE, {tokenizer.vocab_size} tokens)"
    if stage == "prepare":
        try:
            from llm_playground.data.prepared import prepare
        except ImportError:
            raise InputError(f"no prepared data in {workspace.processed_dir}", "run: llmp data prepare") from None
        meta = prepare(workspace)
        return f"{workspace.processed_dir} ({meta['train_tokens']:,} train + {meta['val_tokens']:,} val tokens)"
    raise ValueError(stage)
