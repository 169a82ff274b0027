"""Request limits: body size, argument size, message count and a per-call deadline.

Each check raises `RequestLimitError` naming the measured size and the limit, so a caller who hits
one knows by how much ("request body is 5,242,880 bytes; the limit is 4,194,304"). Sizes are
measured, never trusted: `BodySizeLimitMiddleware` refuses a too-large `Content-Length` before
reading anything and also counts streamed (chunked) bodies as they arrive. The MCP transports
get the same body limit from the SDK's `max_request_body_size`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._errors import GatewayError

__all__ = [
    "BodySizeLimitMiddleware",
    "CallDeadlineError",
    "RequestLimitError",
    "check_arguments",
    "check_message_count",
]


# One encoder, configured once: `json.dumps` with options builds a new one on every call. It holds
# no state between calls.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


class RequestLimitError(GatewayError):
    """A request over one of the configured limits; `limit` names which one."""

    def __init__(self, limit: str, message: str, *, actual: float | None = None,
                 maximum: float | None = None) -> None:
        self.limit = limit
        self.actual = actual
        self.maximum = maximum
        super().__init__(message)


class CallDeadlineError(RequestLimitError):
    """A call still running when its deadline passed; it was cancelled."""


def check_arguments(arguments: Any, maximum: int | None, *, tool: str | None = None) -> None:
    """Raise when tool arguments, encoded as compact JSON, are over `maximum` characters."""
    if maximum is not None:
        bound = _size_bound(arguments)
        if bound is not None and bound <= maximum:
            return  # under the limit however it encodes: no need to encode it
    size = len(_COMPACT.encode(arguments))
    if maximum is not None and size > maximum:
        whose = f" for tool '{tool}'" if tool else ""
        raise RequestLimitError("max_argument_chars",
                                f"arguments{whose} are {size:,} characters as JSON; the limit is {maximum:,}",
                                actual=size, maximum=maximum)


_INT_BOUND = 1 << 64  # an int inside (-2**64, 2**64) is at most 21 characters as JSON
_MAX_BOUNDED = 64  # more items than this are measured: a walk in Python would cost more than encoding


def _size_bound(arguments: Any) -> int | None:
    """An upper bound of `_COMPACT.encode(arguments)`'s length for the usual shape, an object of
    strings, numbers, booleans, nulls and short lists of strings (None for any other shape, or
    many items: then the size is measured).

    A string encodes to at most 6 characters per character (a control character becomes
    `\\u00XX`) plus its quotes; a float to at most 24 (`-2.2250738585072014e-308`)."""
    if type(arguments) is not dict or len(arguments) > _MAX_BOUNDED:
        return None
    bound = 2  # {}
    for key, value in arguments.items():
        if type(key) is not str:
            return None
        kind = type(value)
        if kind is str:
            bound += 6 * (len(key) + len(value)) + 6  # "key":"value",
        elif value is None or kind is bool:
            bound += 6 * len(key) + 9  # "key":false,
        elif kind is int and -_INT_BOUND < value < _INT_BOUND:
            bound += 6 * len(key) + 25
        elif kind is float:
            bound += 6 * len(key) + 28
        elif kind is list and len(value) <= _MAX_BOUNDED:  # such as the chat API's messages
            bound += 6 * len(key) + 6  # "key":[],
            for item in value:
                if type(item) is not str:
                    return None
                bound += 6 * len(item) + 3  # "item",
        else:
            return None
    return bound


def check_message_count(count: int, maximum: int | None, *, what: str = "messages") -> None:
    if maximum is not None and count > maximum:
        raise RequestLimitError("max_messages", f"the request has {count:,} {what}; the limit is {maximum:,}",
                                actual=count, maximum=maximum)


class BodySizeLimitMiddleware:
    """ASGI middleware: 413 for HTTP bodies over `max_bytes` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await _send_413(send, f"request body is {declared:,} bytes; "
                                          f"the limit is {self.max_bytes:,}")
                    return
        received = 0
        response_started = False
        answered = False  # our 413 went out: swallow whatever the app sends or raises after it

        async def limited_receive() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not response_started and not answered:
                        answered = True
                        await _send_413(send, f"request body is at least {received:,} bytes; "
                                              f"the limit is {self.max_bytes:,}")
                    raise _BodyTooLarge(received)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if answered:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not answered:
                raise


class _BodyTooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


async def _send_413(send: Send, message: str) -> None:
    # RFC 9457 problem details, the shape of every HTTP error the gateway answers with
    body = json.dumps({"type": "urn:mcp-gateway:problem:request-too-large", "title": "Request too large",
                       "status": 413, "detail": message}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
