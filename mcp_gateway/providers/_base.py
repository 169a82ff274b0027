"""What every provider speaks: a normalised request in, a normalised completion out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "Completion",
    "CompletionRequest",
    "FunctionTool",
    "Message",
    "OnText",
    "Preparable",
    "Provider",
    "ToolCall",
    "ToolChoice",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]

OnText = Callable[[str], Awaitable[None]]
"""Receives each piece of answer text as the provider produces it (streaming)."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asks the caller to make (OpenAI's shape: `arguments` is JSON text)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    """One message. An assistant message may carry `tool_calls`; a `tool` message answers the call
    `tool_call_id` (named `name`, which formats that match results by name need)."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A function the model may call; `parameters` is the JSON Schema of its arguments object."""

    name: str
    parameters: Mapping[str, Any]
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """Whether the model must call a tool: `auto` (it decides), `none`, `required` (any tool), or
    `function` (the tool `name`)."""

    mode: Literal["auto", "none", "required", "function"] = "auto"
    name: str | None = None

    @property
    def forced(self) -> bool:
        return self.mode in ("required", "function")


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One call to a model. `output_schema` asks for a JSON answer valid against it; `tools` are
    functions the model may call instead of answering (the calls come back in `Completion.tool_calls`)."""

    model: str
    messages: tuple[Message, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    output_schema: Mapping[str, Any] | None = None
    tools: tuple[FunctionTool, ...] = ()
    tool_choice: ToolChoice | None = None


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
    """A model's answer. `structured` is the parsed JSON value when an output schema was asked for;
    `tool_calls` the functions it called (then `finish_reason` is "tool_calls")."""

    text: str
    finish_reason: str
    usage: Usage
    model: str
    structured: Any = None
    tool_calls: tuple[ToolCall, ...] = ()


class Provider(Protocol):
    """A model provider. Implementations raise `ProviderError` for every failure."""

    name: str

    async def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        """Answer `request`; when `on_text` is given, stream text pieces to it as they arrive."""
        ...

    async def aclose(self) -> None:
        """Release connections and other resources."""
        ...


@runtime_checkable
class Preparable(Protocol):
    """A provider with one-time set-up that its first call would otherwise pay. Servers run
    `prepare` in a worker thread once they serve (see `Router.warm_up`); it is blocking work
    (imports, loading a CA store) and must be safe to run while calls start."""

    def prepare(self) -> None: ...
