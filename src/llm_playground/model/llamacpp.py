"""An optional backend: GGUF files run by llama.cpp (through `llama-cpp-python`), logits out.

llama.cpp only computes the logits; sampling stays in our own generation loop, as with every backend.
Token ids come from our `HFTokenizer` over the cached converted directory, so ids, special tokens and
the chat template are the same whichever backend runs the model.

Caches. A cache here is the list of tokens it stands for; their keys and values live in one llama.cpp
context, which holds several *sequences* in one unified KV buffer. Each cache that runs gets a sequence;
`forward` rewinds that sequence to the longest prefix it shares with the cache's tokens (as
llama-cpp-python's own `generate` reuses a prompt) and evaluates the rest. A new or copied cache starts
from the longest prefix any sequence already holds, shared with `llama_memory_seq_cp` (the cells are
marked as belonging to both sequences, nothing is recomputed or copied). So n > 1 completions of one
prompt, run in turns, cost what running them one after the other costs; with a single KV state that
is rewound for each turn they cost 17 times more at 64 tokens each (measured), since every turn
recomputes the whole suffix the other sequence overwrote.

The C API of llama.cpp is used directly (`llama_cpp.llama_cpp`) rather than the `Llama` class, because
`Llama` creates its context with a single sequence and offers no way to ask for more.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llm_playground.errors import ContextOverflow, InputError, InvalidParameter, ModelLoadError
from llm_playground.model.base import ModelInfo
from llm_playground.tokenizer.hf import HFTokenizer

# llama.cpp allocates the whole KV buffer up front, so the training context of recent models (32k–128k)
# would cost gigabytes before the first token; 4096 is plenty for a playground and `n_ctx` raises it.
DEFAULT_N_CTX = 4096
# Tokens per llama_decode call; a longer prompt is evaluated in chunks.
N_BATCH = 512
# Sequences the context can hold at once (caches that keep their K/V); more caches than this still
# work, the least recently used one is recomputed from its tokens when it runs again.
N_SEQUENCES = 16

_backend_ready = False


class LlamaCppCache:
    """The tokens a sequence has seen, and the llama.cpp sequence that holds their K/V (if any still does)."""

    def __init__(self, tokens: list[int] | None = None) -> None:
        self.tokens: list[int] = tokens if tokens is not None else []
        self._slot: _Slot | None = None

    @property
    def length(self) -> int:
        return len(self.tokens)

    def copy(self) -> LlamaCppCache:
        # No sequence of its own yet: its first forward shares this cache's cells for the common prefix.
        return LlamaCppCache(list(self.tokens))


@dataclass(eq=False)
class _Slot:
    """One llama.cpp sequence: the tokens whose K/V it holds (positions 0..n-1) and the cache using it."""

    seq_id: int
    tokens: list[int] = field(default_factory=list)
    owner: weakref.ref[LlamaCppCache] | None = None
    used: int = 0

    def owned_by(self, cache: LlamaCppCache) -> bool:
        return self.owner is not None and self.owner() is cache

    @property
    def free(self) -> bool:
        # A slot whose cache was garbage-collected keeps its K/V as a reusable prefix until it is needed.
        return self.owner is None or self.owner() is None


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
        lib = _import_llama_cpp()
        from llm_playground.model.convert import ensure_converted
        from llm_playground.model.runtime import default_threads

        self._lib = lib
        self.threads = threads or default_threads()
        stack = contextlib.ExitStack()
        # Everything llama.cpp allocated is freed when the model is closed or collected; the stack
        # frees in reverse order, so the batch and context go before the model they belong to.
        self._finalizer = weakref.finalize(self, stack.close)
        try:
            model = lib.llama_model_load_from_file(str(source).encode(), lib.llama_model_default_params())
            if not model:
                raise ModelLoadError(f"llama.cpp cannot load {source}",
                                     "check that the file is a complete GGUF of an architecture llama.cpp knows")
            stack.callback(lib.llama_model_free, model)
            if lib.llama_model_is_recurrent(model) or lib.llama_model_is_hybrid(model) \
                    or lib.llama_model_has_encoder(model):
                # Recurrent states cannot be rewound to a prefix, and encoder-decoders need llama_encode.
                raise ModelLoadError(f"{source.name}: recurrent and encoder-decoder models are not supported by "
                                     "the llamacpp backend", "use --backend transformers")
            self.train_context_length = int(lib.llama_model_n_ctx_train(model))
            params = lib.llama_context_default_params()
            params.n_ctx = n_ctx or min(self.train_context_length or DEFAULT_N_CTX, DEFAULT_N_CTX)
            params.n_batch = params.n_ubatch = N_BATCH
            params.n_seq_max = N_SEQUENCES
            # One buffer for all sequences: needed for prefixes to be shared between them, and any one
            # sequence may use the whole context.
            params.kv_unified = True
            # Sliding-window models otherwise drop old cells, which a rewind or a shared prefix may need.
            params.swa_full = True
            # Flash attention stays at llama.cpp's default ("auto", on for the CPU): with it a prompt followed by
            # single tokens gives the same logits as one batch, without it they differ by up to ~1 on SmolLM2
            # (other kernels for other batch shapes), and decoding is as fast.
            params.n_threads = params.n_threads_batch = self.threads
            params.no_perf = True
            ctx = lib.llama_init_from_model(model, params)
            if not ctx:
                raise ModelLoadError(f"llama.cpp cannot create a context of {params.n_ctx} for {source}",
                                     "try a smaller n_ctx")
            stack.callback(lib.llama_free, ctx)
            batch = lib.llama_batch_init(N_BATCH, 0, 1)
            stack.callback(lib.llama_batch_free, batch)
        except BaseException:
            self._finalizer()
            raise
        self._model, self._ctx, self._batch = model, ctx, batch
        self._memory = lib.llama_get_memory(ctx)
        self._window = int(lib.llama_n_ctx(ctx))
        self._n_vocab = int(lib.llama_vocab_n_tokens(lib.llama_model_get_vocab(model)))
        self._logits_bytes = self._n_vocab * ctypes.sizeof(ctypes.c_float)
        # numpy views of the batch's arrays, so a chunk of tokens is written without a Python loop.
        self._batch_token = np.ctypeslib.as_array(batch.token, shape=(N_BATCH,))
        self._batch_pos = np.ctypeslib.as_array(batch.pos, shape=(N_BATCH,))
        self._batch_n_seq = np.ctypeslib.as_array(batch.n_seq_id, shape=(N_BATCH,))
        self._batch_logits = np.ctypeslib.as_array(batch.logits, shape=(N_BATCH,))
        self._slots = [_Slot(seq_id) for seq_id in range(N_SEQUENCES)]
        self._clock = 0
        # One context is one mutable state: concurrent callers (the API server's requests) take turns.
        self._lock = threading.Lock()

        self.tokenizer = HFTokenizer(ensure_converted(source, label=name))
        self.info = ModelInfo(
            name=name or source.stem, backend="llamacpp",
            architecture=self._metadata("general.architecture") or "unknown",
            parameters=int(lib.llama_model_n_params(model)), context_length=self._window,
            vocab_size=self._n_vocab, dtype=self._file_type(), location=str(source),
        )

    @property
    def context_length(self) -> int:
        """Positions this context holds: n_ctx, by default min(training context, 4096). Not the training
        context itself: llama.cpp cannot go past the KV buffer it allocated."""
        return self._window

    def new_cache(self, capacity: int | None = None) -> LlamaCppCache:
        # Nothing to preallocate: the KV buffer was sized when the context was created.
        return LlamaCppCache()

    def forward(self, ids: Sequence[int], cache: LlamaCppCache) -> np.ndarray:
        new = [int(i) for i in ids]  # numpy integers would be stored and compared as Python objects
        tokens = cache.tokens
        total = len(tokens) + len(new)
        if total == 0:
            raise InputError("there are no tokens to evaluate", "give the model a non-empty prompt")
        if total > self._window:
            raise ContextOverflow(f"{total} tokens do not fit the context of {self._window}",
                                  "shorten the prompt or generate fewer tokens")
        with self._lock:
            self._clock += 1
            slot = self._slot_for(cache, new)
            held = slot.tokens
            keep = len(held) if held == tokens else _common_prefix(held, tokens + new)
            # At least one token is evaluated: llama.cpp keeps only the last decode's logits, so a call
            # with no new ids (or a sequence already ahead) replays the last token to get them back.
            keep = min(keep, total - 1)
            if keep < len(held):
                self._remove(slot, keep)
            todo = new[keep - len(tokens):] if keep >= len(tokens) else tokens[keep:] + new
            self._decode(slot, todo)
            slot.used = self._clock
            tokens.extend(new)
            return self._last_logits()

    def close(self) -> None:
        """Free llama.cpp's model and context now rather than at garbage collection."""
        self._finalizer()

    # --- sequences -------------------------------------------------------------------------------

    def _slot_for(self, cache: LlamaCppCache, new: list[int]) -> _Slot:
        """The cache's own sequence, or a sequence given to it now, seeded with the longest shared prefix."""
        slot = cache._slot
        if slot is not None and slot.owned_by(cache):
            return slot
        target = cache.tokens + new
        free = [s for s in self._slots if s.free]
        if free:  # the free one whose K/V is most useful to this cache, else the least recently used
            slot = max(free, key=lambda s: (_common_prefix(s.tokens, target), -s.used))
        else:  # every sequence belongs to a live cache: the least recently used one loses its K/V
            slot = min(self._slots, key=lambda s: s.used)
        slot.owner, cache._slot = weakref.ref(cache), slot
        best, best_length = slot, _common_prefix(slot.tokens, target)
        for other in self._slots:
            if other is not slot and len(other.tokens) > best_length:
                length = _common_prefix(other.tokens, target)
                if length > best_length:
                    best, best_length = other, length
        if best is not slot:
            self._remove(slot, 0)
            self._lib.llama_memory_seq_cp(self._memory, best.seq_id, slot.seq_id, 0, best_length)
            slot.tokens = best.tokens[:best_length]
        return slot

    def _remove(self, slot: _Slot, start: int) -> None:
        """Drop the slot's positions from `start` on."""
        if not self._lib.llama_memory_seq_rm(self._memory, slot.seq_id, start, -1):
            # Only recurrent memories refuse a partial removal, and those models are refused at load.
            raise RuntimeError(f"llama.cpp could not remove positions {start}.. of sequence {slot.seq_id}")
        del slot.tokens[start:]

    def _evict(self, keep: _Slot) -> bool:
        """Free the K/V of another sequence (free ones first, then the least recently used); False if none
        holds anything."""
        victims = [s for s in self._slots if s is not keep and s.tokens]
        if not victims:
            return False
        victim = min(victims, key=lambda s: (not s.free, s.used))
        self._remove(victim, 0)
        victim.owner = None  # its cache, if alive, gets a sequence again (and recomputes) when it next runs
        return True

    def _decode(self, slot: _Slot, tokens: list[int]) -> None:
        """Append `tokens` to the slot's sequence; logits are computed for the very last one only."""
        lib, batch = self._lib, self._batch
        for start in range(0, len(tokens), N_BATCH):
            chunk = tokens[start:start + N_BATCH]
            n, position = len(chunk), len(slot.tokens)
            self._batch_token[:n] = chunk
            self._batch_pos[:n] = np.arange(position, position + n)
            self._batch_n_seq[:n] = 1
            self._batch_logits[:n] = 0
            self._batch_logits[n - 1] = start + n == len(tokens)
            for i in range(n):
                batch.seq_id[i][0] = slot.seq_id
            batch.n_tokens = n
            code = lib.llama_decode(self._ctx, batch)
            while code == 1 and self._evict(keep=slot):  # 1: no room in the KV buffer
                code = lib.llama_decode(self._ctx, batch)
            if code != 0:
                # On errors the ubatches already evaluated stay in memory; drop them to stay consistent.
                self._remove(slot, position)
                if code == 1:
                    raise ContextOverflow(f"the KV buffer of {self._window} cells has no room for {n} tokens",
                                          "use a larger n_ctx")
                raise RuntimeError(f"llama_decode returned {code}")
            slot.tokens.extend(chunk)

    def _last_logits(self) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self._ctx, -1)
        if not pointer:
            raise RuntimeError("llama.cpp returned no logits for the last position")
        # llama.cpp reuses its output buffer on the next decode, so the row is copied out.
        logits = np.empty(self._n_vocab, dtype=np.float32)
        ctypes.memmove(logits.ctypes.data, pointer, self._logits_bytes)
        return logits

    # --- metadata --------------------------------------------------------------------------------

    def _metadata(self, key: str) -> str | None:
        buffer = ctypes.create_string_buffer(256)
        if self._lib.llama_model_meta_val_str(self._model, key.encode(), buffer, len(buffer)) < 0:
            return None
        return buffer.value.decode("utf-8", errors="replace")

    def _file_type(self) -> str:
        """The quantization as llama.cpp names it: "Q4_1", "Q4_K - Medium", "F16"."""
        name = self._lib.llama_ftype_name(self._lib.llama_model_ftype(self._model))
        if name:
            return name.decode("utf-8", errors="replace")
        return f"file type {self._metadata('general.file_type') or 'unknown'}"


def _import_llama_cpp() -> Any:
    global _backend_ready
    try:
        import llama_cpp
    except ImportError:
        raise InvalidParameter("the llamacpp backend needs llama-cpp-python",
                               "pip install 'llm-playground[llamacpp]' (builds llama.cpp, several minutes)") from None
    if not _backend_ready:
        # Importing llama_cpp routes llama.cpp's log lines to stderr through this logger, which lets
        # everything through until a level is set (what `Llama(verbose=False)` does); keep any level
        # the application chose.
        llama_logger = logging.getLogger("llama-cpp-python")
        if llama_logger.level == logging.NOTSET:
            llama_logger.setLevel(logging.ERROR)
        llama_cpp.llama_backend_init()
        _backend_ready = True
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
