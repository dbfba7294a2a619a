"""`llmp pipeline`'s data stages: whichever of collect → tokenizer → prepare has no output yet, with defaults.

The stages belong to `llm_playground.data`; this module only decides which are missing and calls them.
"""

from __future__ import annotations

from llm_playground.workspace import Workspace

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
    """Run one stage with its defaults (those of `llmp data collect`, `tokenizer train`, `data prepare`)."""
    if stage == "collect":
        from llm_playground.data.corpus import CollectRequest, collect

        manifest = collect(workspace, CollectRequest(sources=("shakespeare",)))
        return f"{workspace.relative(workspace.corpus_path)} ({manifest.get('documents', '?')} documents)"
    if stage == "tokenizer":
        from llm_playground.data.vocab import train_tokenizer

        tokenizer = train_tokenizer(workspace, vocab_size=DEFAULT_VOCAB).tokenizer
        return f"{workspace.relative(workspace.tokenizer_path)} (BPE, {tokenizer.vocab_size} tokens)"
    if stage == "prepare":
        from llm_playground.data.prepared import prepare

        meta = prepare(workspace)
        return (f"{workspace.relative(workspace.processed_dir)} ({meta['train_tokens']:,} train + "
                f"{meta['val_tokens']:,} val tokens)")
    raise ValueError(stage)
