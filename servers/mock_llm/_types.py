"""Format-neutral data passed between the wire formats, the content builder and the engine.

Each wire format parses its own request shape into :class:`ChatRequest` and renders a
:class:`Completion` (or an :class:`ErrorReply`) back into its own shape; everything in between
is shared, which keeps the four formats behaviourally identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FinishReason = Literal["stop", "length", "tool_use"]


class RequestInvalid(Exception):
    """The request is not acceptable to the emulated provider (rendered as ``status``, 400 by default)."""

    def __init__(self, message: str, *, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status


@dataclass(frozen=True, slots=True)
class ForcedTool:
    """A tool the client forced (Anthropic ``tool_choice``); answered with a ``tool_use`` block."""

    name: str
    input_schema: Any


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What the mock needs from any provider request."""

    model: str
    prompt_texts: tuple[str, ...]
    last_user_text: str
    stream: bool
    max_tokens: int | None = None
    json_schema: Any = None
    json_mode: bool = False
    tool: ForcedTool | None = None
    include_usage: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Completion:
    """A fully decided answer: text, its stream chunks, token usage and finish reason."""

    serial: str
    model: str
    created: int
    text: str
    chunks: tuple[str, ...]
    prompt_tokens: int
    completion_tokens: int
    finish: FinishReason
    empty: bool = False
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    tool_name: str | None = None
    tool_input: Any = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error to render in a format's own error shape.

    ``kind`` is ``"invalid"`` (bad request body), ``"quota"`` (non-retryable quota/billing) or
    ``"status"`` (an HTTP status fault such as 429/500/503/529).
    """

    status: int
    kind: Literal["invalid", "quota", "status"]
    message: str
    param: str | None = None
    retry_after_s: float = 1.0
