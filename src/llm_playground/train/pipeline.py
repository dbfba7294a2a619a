"""`llmp pipeline`'s data stages: whichever of collect → tokenizer → prepare is missing or stale, with defaults.

The stages belong to `llm_playground.data`; this module only decides which are missing and calls them.
"""

from __future__ import annotations

from llm_playground.workspace import Workspace

DEFAULT_VOCAB = 4096


def missing_data_stages(workspace: Workspace) -> list[str]:
    """The data stages to run: those without output, those whose output is older than its input (a
    tokenizer trained before the current corpus), and every one after them."""
    from llm_playground.data.status import pipeline_status

    missing = []
    corpus, tokenizer = workspace.corpus_path, workspace.tokenizer_path
    if not corpus.is_file():
        missing.append("collect")
    if missing or not tokenizer.is_file() or tokenizer.stat().st_mtime < corpus.stat().st_mtime:
        missing.append("tokenizer")
    if missing or not next(s for s in pipeline_status(workspace).stages if s.key == "processed").ready:
        missing.append("prepare")  # missing, or made from another tokenizer or corpus (data.status says which)
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
