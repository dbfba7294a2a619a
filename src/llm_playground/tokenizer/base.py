"""The `Tokenizer` protocol: what the rest of the project may ask of any tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

Message = dict[str, str]


@runtime_checkable
class Tokenizer(Protocol):
    @property
    def vocab_size(self) -> int: ...

    @property
    def bos_id(self) -> int | None: ...

    @property
    def eos_id(self) -> int | None: ...

    @property
    def stop_ids(self) -> frozenset[int]:
        """Every id that ends a generation (EOS and the chat template's end-of-turn tokens)."""
        ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def token_text(self, token_id: int) -> str:
        """The token as the vocabulary spells it (e.g. `Ġthe`), for display."""
        ...

    def apply_chat_template(self, messages: Sequence[Message]) -> str | None:
        """The prompt text for a conversation, ending where the assistant speaks; None without a template."""
        ...
