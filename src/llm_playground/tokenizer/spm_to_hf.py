"""Our SentencePiece model as a Hugging Face `tokenizer.json`, written only when it encodes identically.

SentencePiece encodes the whole normalised string (spaces as `▁`) with no pre-tokenisation, so the
converted tokenizer has none either: a `Replace(" ", "▁")` normaliser and the bare model. BPE merges
come from the vocabulary (a pair merges when its concatenation is a normal piece; earlier pieces rank
first, as SentencePiece's scores are minus their rank); unigram keeps the scores. User-defined symbols
become added tokens matched before the model, as SentencePiece matches them; unk/bos/eos become
special tokens, and `split_special_tokens` makes transformers read their literal text (`<s>`) as plain
text, as SentencePiece does.

SentencePiece's unigram search adds scores in float32, `tokenizers` in float64: splits of equal score
(`▁▁`+`▁` against `▁`+`▁▁` in a run of spaces) then fall to rounding noise, so a unigram model rarely
passes the check; BPE has no such ties.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path

from llm_playground.tokenizer.sentencepiece import SentencePieceTokenizer

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
NORMAL, UNKNOWN, CONTROL, USER_DEFINED = 1, 2, 3, 4  # SentencePiece's piece types
_EDGE_CASES = (
    "To be, or not to be: that is the question.", "  two leading spaces", "trailing spaces   ", " ", "",
    "a  b   c    d     e      f", "tabs\tand\t\tdouble tabs", "new\nlines\n\n\nand\r\nCRLF\n", "\n", "   \n  \n",
    "digits 0123456789 3.14159 1,000,000 2026-11-23", "naïve café résumé Ærø ß ǅ ﬁ Å Å", "Привет, мир",
    "中文字符和日本語のテキスト", "한국어 텍스트", "مرحبا بالعالم", "emoji 😀🎉 👩‍👩‍👧 🇫🇷 ✓ ❤️", "e\u0301 combining",
    "zero\u200bwidth", "***  ---  !!!  ...  ???", "x" * 300, " " * 40, "\t" * 9,
)
_WORDS = "To be or not to be that is the question whether nobler in mind suffer slings and arrows".split()


def _space_runs(count: int = 24, words: int = 150) -> list[str]:
    """Words between runs of 1-6 spaces. Where unigram splits tie (`▁▁`+`▁` or `▁`+`▁▁`), SentencePiece's
    winner depends on the float32 rounding of the score so far, so ties deep into long texts are needed."""
    rng = random.Random(0)
    return ["".join(rng.choice(_WORDS) + " " * rng.randint(1, 6) for _ in range(words)) for _ in range(count)]


def unsupported(sp: SentencePieceTokenizer) -> str | None:
    """Why `to_tokenizers` cannot reproduce `sp`, for options our trainer never sets: a dummy prefix
    (SentencePiece adds its `▁` even before a leading space, `tokenizers`' Metaspace does not), extra-whitespace
    removal, NFKC rules (they differ on control characters); None when it can."""
    spec, problems = sp.model_proto.normalizer_spec, []
    if spec.precompiled_charsmap or spec.name not in ("identity", ""):
        problems.append(f"normalization rule {spec.name!r}")
    problems += [option for option in ("add_dummy_prefix", "remove_extra_whitespaces") if getattr(spec, option)]
    if sp.model_type not in ("bpe", "unigram"):
        problems.append(f"model type {sp.model_type!r}")
    if not problems:
        return None
    return f"{', '.join(problems)}: no exact tokenizers equivalent (a tokenizer from llmp tokenizer train has none)"


def to_tokenizers(sp: SentencePieceTokenizer):  # -> tokenizers.Tokenizer
    """The `tokenizers` equivalent of a SentencePiece BPE or unigram model as our trainer makes them
    (identity normalisation, no dummy prefix, byte fallback); see `unsupported`."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers
    from tokenizers.models import BPE, Model, Unigram

    proto = sp.model_proto
    pieces, trainer = list(proto.pieces), proto.trainer_spec
    model: Model
    if sp.model_type == "unigram":
        model = Unigram([(p.piece, p.score) for p in pieces], unk_id=trainer.unk_id,
                        byte_fallback=trainer.byte_fallback)
    else:
        model = BPE({p.piece: i for i, p in enumerate(pieces)}, _merges(pieces), unk_token=trainer.unk_piece,
                    fuse_unk=True, byte_fallback=trainer.byte_fallback)
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tokenizer.add_tokens([AddedToken(p.piece, normalized=False, special=False)
                          for p in pieces if p.type == USER_DEFINED])
    tokenizer.add_special_tokens([AddedToken(p.piece, normalized=False, special=True)
                                  for p in pieces if p.type in (UNKNOWN, CONTROL)])
    return tokenizer


def _merges(pieces: Sequence) -> list[tuple[str, str]]:
    """Every split of a normal piece into two normal pieces, ranked by the piece's id (SentencePiece merges
    the pair whose concatenation scores highest; its BPE scores fall with the id)."""
    ids = {p.piece: i for i, p in enumerate(pieces) if p.type == NORMAL}
    merges = [(i, ids[piece[:k]], ids[piece[k:]]) for piece, i in ids.items()
              for k in range(1, len(piece)) if piece[:k] in ids and piece[k:] in ids]
    return [(pieces[left].piece, pieces[right].piece) for _, left, right in sorted(merges)]


def tokenizer_config(sp: SentencePieceTokenizer, context_length: int) -> dict:
    """transformers' `tokenizer_config.json`: the fast tokenizer class and its special tokens. There is no
    pad piece, so padding uses EOS, as GPT-2's tokenizers do. The text `</s>` stays text, as SentencePiece
    encoded it in the training data (`split_special_tokens`)."""
    def piece(token_id: int | None) -> str | None:
        return None if token_id is None else sp.token_text(token_id)

    eos = piece(sp.eos_id)
    return {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": piece(sp.bos_id), "eos_token": eos,
            "unk_token": piece(sp.unk_id), "pad_token": eos, "model_max_length": context_length,
            "clean_up_tokenization_spaces": False, "split_special_tokens": True}


def verification_texts(sp: SentencePieceTokenizer, corpus: Path | None, corpus_chars: int = 300_000) -> list[str]:
    """What the check encodes: the start of the training corpus (by line and in 20,000-character blocks),
    edge cases, and the user's special tokens inside text."""
    texts = [*_EDGE_CASES, *_space_runs(), "literal <0x41> bytes", "a <s> b </s> <unk> c<s>"]
    for token in sp.user_symbols:
        texts += [token, f"before{token}after", f"a {token} b", f" {token}  {token}\n{token}"]
    if corpus is not None and corpus.is_file():
        with corpus.open(encoding="utf-8", errors="replace") as handle:
            head = handle.read(corpus_chars)
        texts += [line for line in head.split("\n") if line.strip()]
        texts += [head[start:start + 20_000] for start in range(0, len(head), 20_000)]
    return texts


def first_difference(sp: SentencePieceTokenizer, hf, texts: Iterable[str]) -> str | None:
    """None when `hf` (a transformers tokenizer, as `AutoTokenizer` loads it) gives SentencePiece's ids for
    every text and decodes them back to SentencePiece's text; else what differed, in a few words."""
    texts = list(texts)
    ours = sp.encode_batch(texts, threads=1)
    theirs = hf(texts, verbose=False)["input_ids"]  # verbose: no warning for texts longer than the context
    for text, expected, got in zip(texts, ours, theirs, strict=True):
        if expected != got:
            same = (a == b for a, b in zip(expected, got, strict=False))
            at = next((i for i, equal in enumerate(same) if not equal), min(len(expected), len(got)))
            return (f"{_shown(text)} encodes differently from token {at} "
                    f"({_pieces(sp, expected[at:at + 3])} vs {_pieces(sp, got[at:at + 3])}){_cause(sp, text)}")
        if hf.decode(got) != sp.decode(expected):
            return f"{_shown(text)} decodes differently ({hf.decode(got)[:40]!r})"
    return None


def _cause(sp: SentencePieceTokenizer, text: str) -> str:
    if sp.model_type != "unigram":
        return ""
    if "<0x" in text or "<s>" in text:
        return "; tokenizers' unigram model reads piece names such as <0x41> or <s> in text as those pieces"
    return "; SentencePiece's unigram search adds scores in float32, so splits of equal score fall to rounding"


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _pieces(sp: SentencePieceTokenizer, ids: Sequence[int]) -> str:
    return " ".join(sp.token_text(i) if 0 <= i < sp.vocab_size else str(i) for i in ids) or "end"


def write_hf_tokenizer(sp: SentencePieceTokenizer, directory: Path, context_length: int,
                       texts: Sequence[str]) -> str | None:
    """Write `tokenizer.json` + `tokenizer_config.json` into `directory` if transformers, loading them,
    encodes `texts` exactly as `sp` does; else remove them and return why (one line)."""
    from transformers import AutoTokenizer

    if reason := unsupported(sp):
        return reason
    to_tokenizers(sp).save(str(directory / TOKENIZER_FILES[0]))
    (directory / TOKENIZER_FILES[1]).write_text(json.dumps(tokenizer_config(sp, context_length), indent=2) + "\n",
                                                encoding="utf-8")
    try:
        loaded = AutoTokenizer.from_pretrained(directory)
    except Exception as exc:  # noqa: BLE001 — whatever transformers objects to, the export goes on without it
        difference: str | None = f"transformers could not load it ({type(exc).__name__}: {exc})"
    else:
        difference = first_difference(sp, loaded, texts)
    if difference is None:
        return None
    for name in TOKENIZER_FILES:
        (directory / name).unlink()
    return difference
