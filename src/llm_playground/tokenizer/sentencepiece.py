"""SentencePiece tokenizers: the ones users train on their own corpus (`llmp tokenizer train`).

BPE (or unigram) with byte fallback, so any text round-trips even when a character was never seen in
training. No dummy prefix: a word at the start of a line is split as in training (SentencePiece trains on
lines) and a single token decodes with its own space, as GPT-2's tokens do (7% fewer tokens on Shakespeare).
The ids of the control pieces are fixed (unk 0, bos 1, eos 2) so our GPT's configs can rely on them; the
user's special tokens follow as user-defined symbols.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import sentencepiece as spm

from llm_playground.errors import InputError, InvalidParameter, ModelLoadError
from llm_playground.tokenizer.base import Message
from llm_playground.workspace import atomic_open

MODEL_TYPES = ("bpe", "unigram")
USER_DEFINED = 4  # SentencePiece's piece type of `user_defined_symbols`


class SentencePieceTokenizer:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelLoadError(f"tokenizer {self.path} is missing", "run: llmp tokenizer train")
        self._sp = spm.SentencePieceProcessor()
        try:
            self._sp.Load(str(self.path))
        except (OSError, RuntimeError) as exc:
            raise ModelLoadError(f"{self.path} is not a SentencePiece model ({exc})",
                                 "retrain it with: llmp tokenizer train") from None

    @property
    def vocab_size(self) -> int:
        return self._sp.GetPieceSize()

    @property
    def bos_id(self) -> int | None:
        return _present(self._sp.bos_id())

    @property
    def eos_id(self) -> int | None:
        return _present(self._sp.eos_id())

    @property
    def unk_id(self) -> int:
        return self._sp.unk_id()

    @property
    def user_symbols(self) -> list[str]:
        """The user's special tokens (`--special-token`): always one piece, wherever they appear."""
        return [piece.piece for piece in self.model_proto.pieces if piece.type == USER_DEFINED]

    @property
    def model_proto(self):  # -> sentencepiece_model_pb2.ModelProto: pieces with types and scores, the specs
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(self._sp.serialized_model_proto())
        return proto

    @property
    def model_type(self) -> str:
        return {1: "unigram", 2: "bpe", 3: "word", 4: "char"}[self.model_proto.trainer_spec.model_type]

    @property
    def stop_ids(self) -> frozenset[int]:
        return frozenset() if self.eos_id is None else frozenset({self.eos_id})

    def encode(self, text: str) -> list[int]:
        return self._sp.EncodeAsIds(text)

    def encode_batch(self, texts: Sequence[str], threads: int = -1) -> list[list[int]]:
        """Many texts at once; SentencePiece spreads them over `threads` (all cores by default)."""
        return self._sp.Encode(list(texts), out_type=int, num_threads=threads)

    def decode(self, ids: Sequence[int]) -> str:
        return self._sp.DecodeIds([int(i) for i in ids])

    def token_text(self, token_id: int) -> str:
        return self._sp.IdToPiece(int(token_id))

    def apply_chat_template(self, messages: Sequence[Message]) -> str | None:
        return None  # our GPTs are base models: they continue text, they have no chat format


def _present(token_id: int) -> int | None:
    return None if token_id < 0 else token_id


def train_sentencepiece(corpus: Path, model_path: Path, *, vocab_size: int = 4096, model_type: str = "bpe",
                        special_tokens: Sequence[str] = (), max_sentence_length: int = 16384,
                        input_sentence_size: int = 2_000_000) -> SentencePieceTokenizer:
    """Train on `corpus` (one sentence a line) and write `model_path` and its `.vocab` atomically."""
    if model_type not in MODEL_TYPES:
        raise InvalidParameter(f"unknown tokenizer type {model_type!r}", f"use one of: {', '.join(MODEL_TYPES)}")
    if vocab_size < 260:
        raise InvalidParameter(f"vocab size {vocab_size} is too small",
                               "use at least 260 (256 byte-fallback pieces and the control tokens)")
    if not corpus.is_file() or corpus.stat().st_size == 0:
        raise InputError(f"no corpus at {corpus}", "run: llmp data collect")
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_proto = _train(corpus, vocab_size=vocab_size, model_type=model_type, special_tokens=special_tokens,
                         max_sentence_length=max_sentence_length, input_sentence_size=input_sentence_size)
    with atomic_open(model_path, "wb") as handle:
        handle.write(model_proto)
    tokenizer = SentencePieceTokenizer(model_path)
    vocab_lines = (f"{tokenizer.token_text(i)}\t{tokenizer._sp.GetScore(i):g}\n" for i in range(tokenizer.vocab_size))
    with atomic_open(model_path.with_suffix(".vocab"), "w") as handle:
        handle.writelines(vocab_lines)
    return tokenizer


def _train(corpus: Path, **options) -> bytes:
    import io

    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.Train(
            input=str(corpus), model_writer=model, vocab_size=options["vocab_size"],
            model_type=options["model_type"], byte_fallback=True, character_coverage=0.9995,
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1, user_defined_symbols=list(options["special_tokens"]),
            max_sentence_length=options["max_sentence_length"],
            input_sentence_size=options["input_sentence_size"], shuffle_input_sentence=True,
            split_digits=True, allow_whitespace_only_pieces=True, remove_extra_whitespaces=False,
            add_dummy_prefix=False, normalization_rule_name="identity", num_threads=_threads(), minloglevel=2)
    except RuntimeError as exc:
        raise _explain(exc, options["vocab_size"]) from None
    return model.getvalue()


def _explain(exc: RuntimeError, vocab_size: int) -> Exception:
    text = str(exc)
    match = re.search(r"<= (\d+)", text)
    if "Vocabulary size is too high" in text or "vocab_size" in text.lower():
        limit = f" (at most {match.group(1)})" if match else ""
        return InvalidParameter(f"the corpus cannot support a vocabulary of {vocab_size}{limit}",
                                "use a smaller --vocab-size or collect more text")
    return InputError(f"SentencePiece training failed: {text.strip().splitlines()[-1]}",
                      "check the corpus (llmp data collect)")


def _threads() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)))
