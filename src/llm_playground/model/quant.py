"""Weight-only int8 and int4 formats of the native backend: quantization, the cached quantized form, and the
C++ kernels (kernels.cpp) that compute with it.

Both formats quantize in groups of 32 input values, as llama.cpp's Q8_0 and Q4_1 do:
- int8: w = scale * q + midpoint, q in [-120, 120] (per-channel scales cost +1.9 % perplexity on this model;
  groups of 32 around the midpoint are exact on weights that came from Q4_1 blocks);
- int4: w = scale * q + minimum, q in [0, 15] (Q4_1's layout, the one the bundled GGUF ships), with the tied
  LM head / embedding matrix kept int8 (int4 there alone costs +6 % perplexity).

PyTorch's own int8/int4 CPU kernels (`_weight_int8pack_mm`, the int4 packed matmuls) were measured 10-30x
slower than its float32 GEMV on this AVX2 CPU, so the kernels are ours: compiled once with the C++ compiler
torch.utils.cpp_extension finds, into the cache directory, and reused by every later process.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import platform
import shutil
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import nn

from llm_playground.errors import ModelLoadError
from llm_playground.workspace import cache_dir

log = logging.getLogger(__name__)

GROUP = 32
FORMATS = ("int8", "int4")
# Bump when the quantized layout or the quantization changes: cached files of older versions are rebuilt.
QUANT_VERSION = 2
SOURCE = Path(__file__).with_name("kernels.cpp")


def _cflags() -> list[str]:
    flags = ["-O3", "-std=c++17"]
    if platform.machine().lower() in ("x86_64", "amd64") and torch.backends.cpu.get_cpu_capability() != "DEFAULT":
        flags += ["-mavx2", "-mfma", "-mf16c"]  # the maddubs/madd dot products; without them a scalar path
    return flags


@cache
def kernels() -> Any:
    """The compiled extension, built on first use (tens of seconds) and loaded from the cache afterwards."""
    from torch.utils import cpp_extension

    source = SOURCE.read_bytes()
    flags = _cflags()
    key = hashlib.sha256(source + " ".join(flags).encode() + torch.__version__.encode()).hexdigest()[:12]
    build = cache_dir() / "kernels" / key
    build.mkdir(parents=True, exist_ok=True)
    # One process builds while the others (pytest-xdist workers, two servers) wait, so none imports a
    # half-linked library.
    with open(build / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        library = next(build.glob("*.so"), None)
        if library is not None:
            # Import the cached module directly: cpp_extension.load would rerun ninja, whose build file names
            # the source's path, so another checkout of the same code (a fresh clone) would recompile it.
            return _import_built(f"llmp_kernels_{key}", library)
        if shutil.which("c++") is None and shutil.which("g++") is None:
            raise ModelLoadError("the int8/int4 formats need a C++ compiler to build their kernels once",
                                 "install one (apt-get install g++) or use --dtype float32")
        log.warning("Compiling the int8/int4 kernels once into %s (~40 s; later loads reuse them)", build)
        copy = build / SOURCE.name  # compiled from a copy, so the build does not depend on the package's path
        copy.write_bytes(source)
        started = time.perf_counter()
        try:
            module = cpp_extension.load(name=f"llmp_kernels_{key}", sources=[str(copy)], extra_cflags=flags,
                                        build_directory=str(build), verbose=False)
        except (RuntimeError, OSError, ImportError) as exc:
            raise ModelLoadError(f"cannot build the int8/int4 kernels: {str(exc).splitlines()[0]}",
                                 "check the C++ compiler and ninja (pip install ninja) or use --dtype float32") from exc
        log.warning("Kernels compiled in %.0f s", time.perf_counter() - started)
        return module


def _import_built(name: str, library: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, library)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot load the int8/int4 kernels from {library}", "delete that folder to rebuild them")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class QuantizedMatrix:
    """(out, in) weights: `data` int8 (out, in) or packed int4 uint8 (out, in / 2); `scale` and `minimum` (the
    group's offset: its midpoint for int8, its minimum for int4) float32 (out, in / 32)."""

    data: torch.Tensor
    scale: torch.Tensor
    minimum: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        out, width = self.data.shape
        return out, width * 2 if self.data.dtype == torch.uint8 else width

    @property
    def parts(self) -> list[torch.Tensor]:
        return [self.data, self.scale, self.minimum]

    def dequantize(self) -> torch.Tensor:
        return kernels().dequantize(*self.parts)


def quantize(weight: torch.Tensor, fmt: str) -> QuantizedMatrix:
    """Group-quantize a float (out, in) matrix; `in` must be a multiple of 32."""
    out, width = weight.shape
    if width % GROUP:
        raise ModelLoadError(f"a {out}x{width} matrix cannot be quantized in groups of {GROUP}",
                             "use --dtype float32 for this model")
    groups = weight.detach().float().reshape(out, width // GROUP, GROUP)
    low, high = groups.amin(dim=-1), groups.amax(dim=-1)
    if fmt == "int8":
        # Around the group's midpoint, 240 steps: a 16-level (dequantized Q4_1) group is exact (q = 16 q4 - 120).
        offset, scale = (high + low) / 2, (high - low) / 240
        q = torch.round((groups - offset.unsqueeze(-1)) / torch.where(scale > 0, scale, 1).unsqueeze(-1))
        data = q.clamp(-120, 120).to(torch.int8).reshape(out, width)
        return QuantizedMatrix(data.contiguous(), scale.contiguous(), offset.contiguous())
    if fmt == "int4":
        scale = (high - low) / 15
        q = torch.round((groups - low.unsqueeze(-1)) / torch.where(scale > 0, scale, 1).unsqueeze(-1)).clamp(0, 15)
        q = q.to(torch.uint8)
        packed = q[..., : GROUP // 2] | (q[..., GROUP // 2 :] << 4)  # byte j: element j low, j + 16 high
        return QuantizedMatrix(packed.reshape(out, width // 2).contiguous(), scale.contiguous(), low.contiguous())
    raise ValueError(f"unknown format {fmt!r}")


class QuantLinear(nn.Module):
    """nn.Linear's interface over a quantized weight, for the module path (explorers, batched decoding)."""

    data: torch.Tensor
    scale: torch.Tensor
    minimum: torch.Tensor

    def __init__(self, matrix: QuantizedMatrix, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("data", matrix.data)
        self.register_buffer("scale", matrix.scale)
        self.register_buffer("minimum", matrix.minimum)
        self.bias = None if bias is None else nn.Parameter(bias.float(), requires_grad=False)
        self.out_features, self.in_features = matrix.shape

    @property
    def matrix(self) -> QuantizedMatrix:
        return QuantizedMatrix(self.data, self.scale, self.minimum)

    @property
    def weight(self) -> torch.Tensor:
        """The float32 weight, dequantized on each access (code that reads `.weight` keeps working)."""
        return self.matrix.dequantize()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = kernels().qlinear(x, self.data, self.scale, self.minimum, self.bias)  # (..., out) float32
        return y.to(x.dtype)


def quantized_path(directory: Path, fmt: str) -> Path:
    """Where the quantized form of a converted model directory is cached."""
    stats = [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in sorted(directory.glob("*.safetensors"))]
    key = hashlib.sha256(f"{directory.resolve()}:{stats}:{fmt}:{QUANT_VERSION}".encode()).hexdigest()[:10]
    return cache_dir() / "quantized" / f"{directory.name}-{fmt}-{key}.safetensors"
