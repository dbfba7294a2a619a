"""The one error hierarchy: what a user sees is `message` and, when we know it, `fix`.

Front ends turn a `PlaygroundError` into one line (CLI, exit status 2) or a 4xx JSON body (API);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class PlaygroundError(Exception):
    """An expected failure caused by the user's input or environment."""

    exit_code = 2

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} — {self.fix}" if self.fix else self.message


class InvalidParameter(PlaygroundError):
    """A sampling or command option outside its allowed range."""


class ModelNotFound(PlaygroundError):
    """A model name or path that the registry cannot resolve."""


class ModelLoadError(PlaygroundError):
    """A model that exists but cannot be read (corrupt file, unsupported architecture)."""


class ContextOverflow(PlaygroundError):
    """A prompt that does not fit the model's context window under the `error` policy."""


class InputError(PlaygroundError):
    """Unreadable or malformed input: an empty prompt, a missing file, a bad trace."""


class ProviderError(PlaygroundError):
    """A remote OpenAI-compatible provider that cannot be reached or refuses a request."""
