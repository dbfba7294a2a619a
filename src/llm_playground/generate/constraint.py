"""The `Constraint` interface: a mask over the vocabulary applied to the logits before sampling.

Grammar-constrained decoding (function calling, JSON schemas) implements it; the loop only asks.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Constraint(Protocol):
    def allowed(self, ids: np.ndarray) -> np.ndarray | None:
        """Boolean mask of the vocabulary (True = allowed) for the next token; None allows everything."""
        ...

    def forced(self) -> list[int]:
        """Tokens the constraint leaves no choice about: appended without sampling."""
        ...

    def advance(self, token_id: int) -> None: ...

    def is_finished(self) -> bool: ...
