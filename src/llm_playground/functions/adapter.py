"""Which weights function calls decode with: the model itself, or the model with a LoRA adapter merged in.

`adapter` is "default" (the bundled adapter when the model is the bundled SmolLM2-135M-Instruct, which
is recognised by its weights, not its name; nothing for other models), "none", or the path of an adapter
directory written by `llmp tune calls`. The merged model is a separate object, made once per base model
and adapter and kept as long as the base model lives: chat and every other use of the base model keep the
plain weights, and the merged one shares every tensor the adapter does not touch.
"""

from __future__ import annotations

import threading
import weakref
from importlib import resources
from pathlib import Path
from typing import Any

from llm_playground.errors import InvalidParameter, ModelLoadError
from llm_playground.model.base import LanguageModel, Wrapper

DEFAULT, NONE = "default", "none"
BUNDLED_ADAPTER = "smollm2-calls"

_MERGED: weakref.WeakKeyDictionary[Any, dict[str, LanguageModel | None]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def bundled_adapter_dir() -> Path:
    return Path(str(resources.files("llm_playground.functions") / "adapters" / BUNDLED_ADAPTER))


def model_for_calls(model: LanguageModel, adapter: str | Path | None = DEFAULT) -> LanguageModel:
    """The model to decode arguments with, given the `--adapter` choice."""
    if adapter is None or str(adapter) == NONE:
        return model
    if isinstance(model, Wrapper):  # model/guarded.py, the server's batcher: adapt what it wraps, guard it alike
        return model.sibling(model_for_calls(model.model, adapter))
    key = str(adapter)
    with _LOCK:
        known = _MERGED.get(model, {})
        if key in known:
            return known[key] or model
        merged = _merge(model, adapter)
        # None stands for "the model itself": a value holding its own key would keep the model alive forever.
        _MERGED.setdefault(model, {})[key] = None if merged is model else merged
        return merged


def _merge(model: LanguageModel, adapter: str | Path) -> LanguageModel:
    from llm_playground.model.llama import LlamaModel
    from llm_playground.model.lora import check_base, load_adapter, merged_model

    default = str(adapter) == DEFAULT
    path = bundled_adapter_dir() if default else Path(adapter)
    if not isinstance(model, LlamaModel):
        if default:
            return model
        raise InvalidParameter(f"adapters apply to Llama-family models on the native backend, not to "
                               f"{model.info.name} ({model.info.backend})", "use --adapter none")
    if default and not (path / "adapter.json").is_file():
        return model  # an installation without the bundled adapter: plain calls, as before
    tensors, meta = load_adapter(path)
    if default:
        try:
            check_base(meta, model, path)
        except ModelLoadError:
            return model  # another model: the bundled adapter is not for it
    else:
        check_base(meta, model, path)
    return merged_model(model, tensors, meta, path.name)
