"""What every provider speaks: a normalised request in, a normalised completion out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = ["Completion", "CompletionRequest", "Message", "OnText", "Provider", "Usage"]

Role = Literal["system", "user", "assistant"]

OnText = Callable[[str], Awaitable[None]]
"""Receives each piece of answer text as the provider produces it (streaming)."""


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One call to a model. `output_schema` asks for a JSON answer valid against it."""

    model: str
    messages: tuple[Message, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    output_schema: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts. `input_tokens` includes cached tokens (normalised across providers)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's answer. `structured` is the parsed JSON value when an output schema was asked for."""

    text: str
    finish_reason: str
    usage: Usage
    model: str
    structured: Any = None


class Provider(Protocol):
    """A model provider. Implementations raise `ProviderError` for every failure."""

    name: str

    async def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        """Answer `request`; when `on_text` is given, stream text pieces to it as they arrive."""
        ...

    async def aclose(self) -> None:
        """Release connections and other resources."""
        ...
