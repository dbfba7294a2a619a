"""`llmp pipeline`'s data stages: whichever of collect → tokenizer → prepare is missing or stale, with defaults.

The stages belong to `llm_playground.data`; this module only decides which are missing and calls them.
"""

from __future__ import annotations

from llm_playground.workspace import Workspace

DEFAULT_VOCAB = 4096


def missing_data_stages(workspace: Workspace) -> list[str]:
    """The data stages to run: those whose output is missing or stale (`llmp status` says which and why,
    e.g. a tokenizer trained before the current corpus), and every one after them."""
    from llm_playground.data.status import pipeline_status

    ready = {stage.key: stage.ready for stage in pipeline_status(workspace).stages}
    missing: list[str] = []
    for stage, key in (("collect", "corpus"), ("tokenizer", "tokenizer"), ("prepare", "processed")):
        if missing or not ready[key]:
            missing.append(stage)
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
