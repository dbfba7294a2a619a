"""An optional backend: GGUF files run by llama.cpp (through `llama-cpp-python`), logits out.

llama.cpp only computes the logits here; sampling stays in our own generation loop, like every other
backend. Token ids come from our `HFTokenizer` over the cached converted directory, so ids, special
tokens and the chat template are the same whichever backend runs the model.

llama.cpp holds one KV state per context, while our callers may keep several caches (n > 1 sequences
sharing a prompt, explorers that branch). A cache here is therefore just the list of tokens it stands
for; `forward` rewinds llama.cpp's state to the longest prefix it shares with that list (as
llama-cpp-python's own `generate` reuses a prompt prefix) and evaluates the rest.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llm_playground.errors import ContextOverflow, InputError, InvalidParameter, ModelLoadError
from llm_playground.model.base import ModelInfo
from llm_playground.tokenizer.hf import HFTokenizer

# llama.cpp allocates the whole KV cache up front, so the training context of recent models (32k–128k)
# would cost gigabytes before a single token; 4096 is plenty for a playground and `n_ctx` raises it.
DEFAULT_N_CTX = 4096


class LlamaCppCache:
    """The tokens a sequence has seen; llama.cpp's single KV state is rebuilt from them on demand."""

    def __init__(self, tokens: list[int] | None = None) -> None:
        self.tokens: list[int] = tokens if tokens is not None else []

    @property
    def length(self) -> int:
        return len(self.tokens)

    def copy(self) -> LlamaCppCache:
        return LlamaCppCache(list(self.tokens))


class LlamaCppModel:
    """A `LanguageModel` over a llama.cpp context loaded from a `.gguf` file."""

    def __init__(self, source: Path, name: str | None = None, threads: int | None = None,
                 n_ctx: int | None = None) -> None:
        source = Path(source)
        if source.is_dir():
            raise ModelLoadError(f"{source} is a directory; the llamacpp backend needs a .gguf file",
                                 "pass a .gguf file or a bundled model name, or use --backend native")
        if not source.is_file():
            raise ModelLoadError(f"{source} does not exist", "pass a .gguf file or a bundled model name")
        llama_cpp = _import_llama_cpp()
        from llm_playground.model.convert import ensure_converted
        from llm_playground.model.runtime import default_threads

        threads = threads or default_threads()
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(source), n_ctx=n_ctx or DEFAULT_N_CTX, n_threads=threads,
                n_threads_batch=threads, logits_all=False, verbose=False,
            )
        except (ValueError, RuntimeError) as exc:  # what llama-cpp-python raises for unreadable files
            raise ModelLoadError(f"llama.cpp cannot load {source}: {exc}",
                                 "check that the file is a complete GGUF of an architecture llama.cpp knows") from exc
        self._lib = llama_cpp
        model = self._llm.model
        self.train_context_length = int(llama_cpp.llama_model_n_ctx_train(model))
        # The context is created before n_ctx_train can be read (llama-cpp-python loads both in its
        # constructor), so a model trained on fewer than DEFAULT_N_CTX positions gets a slightly larger
        # KV cache than it can use; the window we report is what the model is good for.
        window = self._llm.n_ctx()
        self._window = window if n_ctx else min(window, self.train_context_length or window)
        self._n_vocab = self._llm.n_vocab()
        self._logits_bytes = self._n_vocab * ctypes.sizeof(ctypes.c_float)
        self._memory = llama_cpp.llama_get_memory(self._llm.ctx)
        # The tokens whose K/V llama.cpp holds now, positions 0..len-1 of sequence 0.
        self._state: list[int] = []
        # One llama.cpp context is one mutable state: concurrent callers (the API server) take turns.
        self._lock = threading.Lock()
        self.threads = threads

        self.tokenizer = HFTokenizer(ensure_converted(source, label=name))
        metadata = self._llm.metadata
        self.info = ModelInfo(
            name=name or source.stem, backend="llamacpp",
            architecture=metadata.get("general.architecture", "unknown"),
            parameters=int(llama_cpp.llama_model_n_params(model)), context_length=self._window,
            vocab_size=self._n_vocab, dtype=_file_type(llama_cpp, model, metadata), location=str(source),
        )

    @property
    def context_length(self) -> int:
        """Positions usable in this context: min(training context, n_ctx), not the training context
        alone, since llama.cpp cannot hold more than the KV cache it allocated."""
        return self._window

    def new_cache(self, capacity: int | None = None) -> LlamaCppCache:
        # Nothing to preallocate: llama.cpp's KV cache was sized when the context was created.
        return LlamaCppCache()

    def forward(self, ids: Sequence[int], cache: LlamaCppCache) -> np.ndarray:
        new = [int(i) for i in ids]  # numpy integers would be compared and stored as objects
        tokens = cache.tokens
        total = len(tokens) + len(new)
        if total == 0:
            raise InputError("there are no tokens to evaluate", "give the model a non-empty prompt")
        if total > self._window:
            raise ContextOverflow(f"{total} tokens do not fit the context of {self._window}",
                                  "shorten the prompt or generate fewer tokens")
        with self._lock:
            keep = self._rewind(tokens, new, total)
            todo = new[keep - len(tokens):] if keep >= len(tokens) else tokens[keep:] + new
            self._llm.n_tokens = keep
            try:
                # With logits_all=False, eval requests logits for the last token of each batch only and
                # copies none into `Llama.scores`; we read the last row straight from llama.cpp below.
                self._llm.eval(todo)
            except BaseException:
                # A decode that failed part-way leaves an unknown state: start from nothing next time.
                self._state.clear()
                self._llm.n_tokens = 0
                raise
            self._state.extend(todo)
            tokens.extend(new)
            return self._last_logits()

    def _rewind(self, tokens: list[int], new: list[int], total: int) -> int:
        """Drop llama.cpp's positions past the prefix it shares with tokens + new; how many are kept."""
        state = self._state
        if state == tokens:  # the common case: this cache was the last one run
            keep = len(tokens)
        else:
            keep = _common_prefix(state, tokens + new)
        # At least one token is evaluated: llama.cpp keeps only the last decode's logits, so a cache that
        # is a prefix of the state (or a call with no new ids) replays its last token to get them back.
        keep = min(keep, total - 1)
        if keep < len(state):
            if not self._lib.llama_memory_seq_rm(self._memory, 0, keep, -1):
                # Recurrent models (Mamba, RWKV) cannot drop a suffix, only everything.
                self._lib.llama_memory_clear(self._memory, True)
                keep = 0
            del state[keep:]
        return keep

    def _last_logits(self) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self._llm.ctx, -1)
        if not pointer:
            raise RuntimeError("llama.cpp returned no logits for the last position")
        # llama.cpp reuses its output buffer on the next decode, so the row is copied out.
        logits = np.empty(self._n_vocab, dtype=np.float32)
        ctypes.memmove(logits.ctypes.data, pointer, self._logits_bytes)
        return logits

    def close(self) -> None:
        """Free llama.cpp's model and context now rather than at garbage collection."""
        self._llm.close()


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise InvalidParameter("the llamacpp backend needs llama-cpp-python",
                               "pip install 'llm-playground[llamacpp]' (builds llama.cpp, several minutes)") from None
    return llama_cpp


def _common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the common prefix. Slice comparisons run in C, so halving the range with them costs
    ~25 µs at 3,500 tokens where a Python or numpy scan of the lists costs 100–300 µs."""
    lo, hi = 0, min(len(a), len(b))  # invariant: a[:lo] == b[:lo]
    if a[:hi] == b[:hi]:
        return hi
    while hi - lo > 64:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return next((i for i in range(lo, hi) if a[i] != b[i]), hi)


def _file_type(llama_cpp: Any, model: Any, metadata: dict[str, str]) -> str:
    """The quantization as llama.cpp names it ("Q4_1", "Q4_K - Medium", "F16")."""
    try:
        name = llama_cpp.llama_ftype_name(llama_cpp.llama_model_ftype(model))
    except AttributeError:  # older bindings: the GGUF's general.file_type number is all there is
        name = None
    if name:
        return name.decode("utf-8", errors="replace")
    return f"ftype {metadata.get('general.file_type', 'unknown')}"
