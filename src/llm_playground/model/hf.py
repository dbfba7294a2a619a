"""Any transformers causal LM as a `LanguageModel`: the fallback for architectures the native backend
does not implement, and the reference the native backend is tested against."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from llm_playground.errors import ModelLoadError
from llm_playground.model.base import FullForward, ModelInfo, describe_dtype
from llm_playground.tokenizer.hf import HFTokenizer


class HFCache:
    def __init__(self) -> None:
        from transformers import DynamicCache

        self.past = DynamicCache()
        self.length = 0

    def copy(self) -> HFCache:
        import copy

        return copy.deepcopy(self)


class HFModel:
    def __init__(self, directory: Path, name: str | None = None, dtype: torch.dtype = torch.float32) -> None:
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        directory = Path(directory)
        try:
            self.net = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype, local_files_only=True).eval()
        except Exception as exc:  # transformers raises many types for unreadable directories
            raise ModelLoadError(f"transformers cannot load {directory}: {exc}",
                                 "check the directory holds a causal LM") from exc
        self.tokenizer = HFTokenizer(directory)
        raw = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        self._context = int(raw.get("max_position_embeddings") or raw.get("n_positions") or 2048)
        self.info = ModelInfo(
            name=name or directory.name, backend="transformers", architecture=raw.get("model_type", "?"),
            parameters=sum(p.numel() for p in self.net.parameters()), context_length=self._context,
            vocab_size=int(raw.get("vocab_size", self.tokenizer.vocab_size)), dtype=describe_dtype(dtype),
            location=str(directory),
        )

    @property
    def context_length(self) -> int:
        return self._context

    def new_cache(self, capacity: int | None = None) -> HFCache:
        return HFCache()

    @torch.inference_mode()
    def forward(self, ids: Sequence[int], cache: HFCache) -> np.ndarray:
        tensor = torch.as_tensor(np.asarray(ids, dtype=np.int64)).unsqueeze(0)
        out = self.net(input_ids=tensor, past_key_values=cache.past, use_cache=True, logits_to_keep=1)
        cache.past = out.past_key_values
        cache.length += len(ids)
        return out.logits[0, -1].float().numpy()

    @torch.inference_mode()
    def forward_full(self, ids: Sequence[int], attentions: bool = True, hidden_states: bool = True) -> FullForward:
        """One pass with every layer's attention weights and hidden states.

        Fused attention kernels never materialise the weights, so the pass runs with transformers' eager
        attention and switches back afterwards.
        """
        tensor = torch.as_tensor(np.asarray(ids, dtype=np.int64)).unsqueeze(0)
        previous = self.net.config._attn_implementation
        if attentions and previous != "eager":
            self.net.set_attn_implementation("eager")
        try:
            out = self.net(input_ids=tensor, output_attentions=attentions, output_hidden_states=hidden_states)
        finally:
            if self.net.config._attn_implementation != previous:
                self.net.set_attn_implementation(previous)
        return FullForward(
            logits=out.logits[0].float().numpy(),
            attentions=torch.stack(out.attentions)[:, 0].float().numpy() if attentions else None,
            hidden_states=torch.stack(out.hidden_states)[:, 0].float().numpy() if hidden_states else None,
        )
