"""A Hugging Face `tokenizer.json` tokenizer (the Rust `tokenizers` library) with its chat template.

transformers' AutoTokenizer would do the same but costs seconds to import and load; this reads the
same files directly and renders the chat template with jinja2, as transformers does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import jinja2
import jinja2.sandbox
from tokenizers import Tokenizer as RustTokenizer

from llm_playground.errors import ModelLoadError
from llm_playground.tokenizer.base import Message

# Tokens that end an assistant turn in common chat templates, beside the declared EOS.
_END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>", "<end_of_turn>")


class HFTokenizer:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        path = self.directory / "tokenizer.json"
        if not path.is_file():
            raise ModelLoadError(f"{path} is missing", "point --model at a directory with tokenizer.json")
        self._tok = RustTokenizer.from_file(str(path))
        self._config = _read_json(self.directory / "tokenizer_config.json")
        self._template_source = _read_chat_template(self.directory, self._config)

    @property
    def rust_tokenizer(self) -> RustTokenizer:
        """The underlying `tokenizers` object (grammar libraries read its JSON)."""
        return self._tok

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def _special_id(self, key: str) -> int | None:
        token = self._config.get(key)
        if isinstance(token, dict):
            token = token.get("content")
        return self._tok.token_to_id(token) if isinstance(token, str) else None

    @cached_property
    def bos_id(self) -> int | None:
        return self._special_id("bos_token")

    @cached_property
    def eos_id(self) -> int | None:
        return self._special_id("eos_token")

    @cached_property
    def stop_ids(self) -> frozenset[int]:
        ids = {self.eos_id} | {self._tok.token_to_id(t) for t in _END_OF_TURN}
        return frozenset(i for i in ids if i is not None)

    @property
    def tokenizer_file(self) -> Path:
        return self.directory / "tokenizer.json"

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=False)

    def token_text(self, token_id: int) -> str:
        return self._tok.id_to_token(token_id) or ""

    @cached_property
    def _template(self) -> jinja2.Template | None:
        if not self._template_source:
            return None
        env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise_template_error
        return env.from_string(self._template_source)

    def apply_chat_template(self, messages: Sequence[Message]) -> str | None:
        if self._template is None:
            return None
        special = {k: self._config.get(k) for k in ("bos_token", "eos_token")}
        return self._template.render(messages=list(messages), add_generation_prompt=True, **special)


def _raise_template_error(message: str) -> None:
    raise ModelLoadError(f"chat template rejected the conversation: {message}", "check the roles' order")


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}", "re-create the model directory") from exc


def _read_chat_template(directory: Path, config: dict) -> str | None:
    jinja_file = directory / "chat_template.jinja"
    if jinja_file.is_file():
        return jinja_file.read_text(encoding="utf-8")
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: take the default one
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    return template if isinstance(template, str) else None
