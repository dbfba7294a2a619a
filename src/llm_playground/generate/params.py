"""`SamplingParams`: one validated description of how to generate, shared by CLI, web app and API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llm_playground.errors import InvalidParameter

ContextPolicy = Literal["error", "truncate"]


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(256, ge=1, description="upper bound on generated tokens")
    greedy: bool = Field(False, description="always take the most likely token (same as temperature 0)")
    temperature: float = Field(0.7, ge=0.0, description="divide logits by this; 0 means greedy")
    top_k: int = Field(0, ge=0, description="keep the k most likely tokens; 0 turns it off")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="keep the smallest set whose probability reaches p")
    min_p: float = Field(0.0, ge=0.0, le=1.0, description="drop tokens below min_p × the top probability")
    repetition_penalty: float = Field(1.0, gt=0.0, description="> 1 discourages tokens already in the context")
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="subtract this × each generated count")
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0, description="subtract this once per generated token")
    seed: int | None = Field(None, ge=0, description="same seed + params + model → same output")
    n: int = Field(1, ge=1, le=64, description="independent samples of the same prompt")
    stop: tuple[str, ...] = Field((), description="strings that end the generation (not included)")
    ignore_eos: bool = Field(False, description="keep going past end-of-sequence tokens")
    context_policy: ContextPolicy = Field("error", description="a prompt too long for the context: error or "
                                                               "truncate its left side")

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_tuple(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = (value,)
        if isinstance(value, list | tuple) and any(not isinstance(s, str) or not s for s in value):
            raise ValueError("stop strings must be non-empty")
        return tuple(value) if isinstance(value, list) else value

    @property
    def is_greedy(self) -> bool:
        return self.greedy or self.temperature == 0.0

    @classmethod
    def create(cls, **values: Any) -> SamplingParams:
        """Validate, turning the first problem into one `InvalidParameter` line; None means default."""
        try:
            return cls(**{k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            raise invalid_parameter(exc) from None

    def updated(self, **changes: Any) -> SamplingParams:
        return SamplingParams.create(**{**self.model_dump(), **changes})


def invalid_parameter(exc: ValidationError) -> InvalidParameter:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "value"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return InvalidParameter(f"unknown parameter {field!r}",
                                f"use one of: {', '.join(SamplingParams.model_fields)}")
    return InvalidParameter(f"{field}: {message} (got {error.get('input')!r})",
                            f"fix {field}; see `llmp generate --help` for the allowed range")
