"""The contract every wire format implements, plus small encoding helpers they share."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from .._types import ChatRequest, Completion, ErrorReply, RequestInvalid


@dataclass(frozen=True, slots=True)
class StreamScript:
    """The frames of one streamed answer, grouped so the engine can inject faults between them.

    ``head`` goes out right after the headers, ``content`` frames carry answer chunks (delays,
    ``stall``, ``cut`` and ``malformed`` act on them), ``tail`` carries finish/usage/end markers.
    """

    media_type: str
    head: tuple[bytes, ...]
    content: tuple[bytes, ...]
    tail: tuple[bytes, ...]
    malformed: bytes


class WireFormat(ABC):
    """One provider's HTTP dialect: parse its request, render its responses, streams and errors."""

    name: str

    def model_of(self, body: Any, request: Request) -> str | None:
        """The requested model, read cheaply before validation (for the model-name fault convention)."""
        model = body.get("model") if isinstance(body, dict) else None
        return model if isinstance(model, str) else None

    @abstractmethod
    def api_key(self, request: Request) -> str | None:
        """The credential the client sent, if any (checked only when auth is required)."""

    @abstractmethod
    def parse(self, body: Any, request: Request) -> ChatRequest:
        """Validate the body like the provider would; raise :class:`RequestInvalid` otherwise."""

    @abstractmethod
    def response(self, completion: Completion) -> dict[str, Any]:
        """The non-streaming JSON body."""

    @abstractmethod
    def stream(self, completion: Completion, request: ChatRequest, *, end_marker: bool) -> StreamScript:
        """The streamed frames; ``end_marker=False`` leaves out the provider's end-of-stream signal."""

    @abstractmethod
    def error(self, error: ErrorReply) -> tuple[int, dict[str, Any]]:
        """HTTP status and body of an error in this provider's shape."""


def dumps(value: Any) -> str:
    """Compact JSON, as the real APIs send it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def sse(data: str, *, event: str | None = None, newline: str = "\n") -> bytes:
    """One Server-Sent Events frame."""
    prefix = f"event: {event}{newline}" if event else ""
    return f"{prefix}data: {data}{newline}{newline}".encode()


def broken_json(value: Any) -> str:
    """Deliberately invalid JSON: the first half of ``value``'s encoding (for the ``malformed`` fault)."""
    text = dumps(value)
    return text[: max(1, len(text) // 2)]


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RequestInvalid("request body must be a JSON object")
    return body


def require_model(body: dict[str, Any], message: str = "model is required") -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestInvalid(message, param="model")
    return model


def optional_positive_int(value: Any, param: str) -> int | None:
    """Validate a max-tokens style field: absent, or an integer >= 1."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RequestInvalid(f"{param}: must be an integer >= 1", param=param)
    return value


def text_of_parts(parts: Iterable[Any], *, text_key: str = "text") -> list[str]:
    """The text of content parts/blocks; non-text parts (images, tools...) contribute nothing."""
    texts = []
    for part in parts:
        if isinstance(part, dict) and isinstance(part.get(text_key), str):
            texts.append(part[text_key])
        elif isinstance(part, str):
            texts.append(part)
    return texts


def retry_delay_text(seconds: float) -> str:
    """A google.protobuf.Duration in JSON form, e.g. ``2s`` or ``0.050s``."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.3f}s"
