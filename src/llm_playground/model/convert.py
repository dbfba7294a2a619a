"""One-time conversion of a GGUF file into a cached Hugging Face directory.

transformers (with `gguf`) reads GGUF directly but takes ~25 s each time (tokenizer ~8 s, dequantizing
the weights ~18 s); converting once into safetensors + tokenizer.json + config makes every later load
take about a second.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from llm_playground.errors import ModelLoadError
from llm_playground.workspace import atomic_dir, cache_dir

log = logging.getLogger(__name__)

# Bump when the layout of converted directories changes, so stale caches are rebuilt.
CONVERSION_VERSION = 1


def converted_dir_for(gguf_path: Path, label: str | None = None) -> Path:
    stat = gguf_path.stat()
    key = f"{gguf_path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}:{CONVERSION_VERSION}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return cache_dir() / "converted" / f"{label or gguf_path.stem}-{digest}"


def check_gguf(path: Path) -> None:
    """Refuse a file that is not a readable GGUF before the conversion starts (transformers' own error for
    one is about Hugging Face repo ids)."""
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror}", "check the path and its permissions") from None
    if magic != b"GGUF":
        raise ModelLoadError(f"{path} is not a valid GGUF file (it does not start with the GGUF signature)",
                             "download the .gguf again, or give a model directory")
    try:
        from gguf import GGUFReader

        GGUFReader(path)  # reads the header and the tensor table: a truncated file fails here
    except Exception as exc:  # gguf raises ValueError, struct errors, IndexError… for damaged files
        raise ModelLoadError(f"{path} is not a valid GGUF file: it is truncated or damaged ({type(exc).__name__})",
                             "download the .gguf again") from None


def ensure_converted(gguf_path: Path, label: str | None = None) -> Path:
    """The cached HF directory for `gguf_path`, converting it first if needed.

    Several processes may ask at once on a fresh machine (pytest-xdist workers, two `llmp` commands): a lock
    file beside the directory lets one convert while the others wait, then find the finished directory
    (which `atomic_dir` renames into place only when complete)."""
    from filelock import FileLock

    target = converted_dir_for(gguf_path, label)
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / f".{target.name}.lock"):
        if not (target / "config.json").is_file():  # not converted by whoever held the lock before us
            _convert(gguf_path, label, target)
    return target


def _convert(gguf_path: Path, label: str | None, target: Path) -> None:
    check_gguf(gguf_path)
    log.warning("Converting %s once into %s (about 25 s; later loads take about a second)", gguf_path.name,
                target)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        folder, name = os.path.split(gguf_path)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                     local_files_only=True)
    except Exception as exc:  # transformers raises many types for unreadable or unsupported GGUF files
        raise ModelLoadError(f"cannot read GGUF file {gguf_path}: {exc}",
                             "check that the file is a complete GGUF of a supported architecture") from exc
    # The weights are dequantized to float32 by now; drop the GGUF marker that blocks saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config._name_or_path = label or gguf_path.stem
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
