"""`Small_LLM_Model`: the course SDK's class, over our models, so code written for it runs unchanged."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from llm_playground.errors import ModelLoadError
from llm_playground.model.base import get_logits_from_input_ids
from llm_playground.model.registry import load_model


class Small_LLM_Model:  # noqa: N801 - the course's name
    def __init__(self, model_name: str = "smollm2", *, dtype: str = "float32", threads: int | None = None) -> None:
        self.model = load_model(model_name, dtype=dtype, threads=threads)
        self.tokenizer = self.model.tokenizer

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids])

    def get_logits_from_input_ids(self, input_ids: Sequence[int]) -> list[float]:
        """Logits of the next token after `input_ids` (full recompute, as the course's SDK does)."""
        return get_logits_from_input_ids(self.model, [int(i) for i in input_ids])

    def _directory(self) -> Path:
        location = Path(self.model.info.location)
        if not location.is_dir():
            raise ModelLoadError(f"{location} has no tokenizer files", "use a Hugging Face or converted model")
        return location

    def get_path_to_tokenizer_file(self) -> str:
        path = self._directory() / "tokenizer.json"
        if not path.is_file():
            raise ModelLoadError(f"{path} is missing", "this model has no tokenizer.json")
        return str(path)

    def get_path_to_vocab_file(self) -> str:
        return str(self._bpe_file("vocab.json"))

    def get_path_to_merges_file(self) -> str:
        return str(self._bpe_file("merges.txt"))

    def get_path_to_vocabulary_json(self) -> str:
        """The course SDK's older name for the vocabulary file."""
        return self.get_path_to_vocab_file()

    def _bpe_file(self, name: str) -> Path:
        """vocab.json / merges.txt, written from tokenizer.json next to it when the model lacks them."""
        directory = self._directory()
        path = directory / name
        if path.is_file():
            return path
        from llm_playground.workspace import atomic_write_text

        bpe = json.loads(Path(self.get_path_to_tokenizer_file()).read_text(encoding="utf-8")).get("model", {})
        if name == "vocab.json":
            atomic_write_text(path, json.dumps(bpe.get("vocab", {}), ensure_ascii=False))
        else:
            merges = [m if isinstance(m, str) else " ".join(m) for m in bpe.get("merges", [])]
            atomic_write_text(path, "#version: 0.2\n" + "\n".join(merges) + "\n")
        return path
