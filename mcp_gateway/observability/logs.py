"""Structured logs: one JSON object per line, tagged with the request id, secrets redacted.

    {"ts": "2025-01-31T12:00:00.123Z", "level": "INFO", "logger": "mcp_gateway.server",
     "message": "tool call finished", "request_id": "9f2c...", "tool": "summarize", ...}

Any `extra={...}` field becomes a top-level key (the fixed keys win on a clash). The request id lives
in a context variable, so every log line written while serving one request carries it, including
lines from tasks that request spawns (contextvars are copied into new tasks). `RequestIdMiddleware`
sets it per HTTP request, taking a well-formed incoming `X-Request-ID` or making one, and echoes it
in the response.
"""

from __future__ import annotations

import json
import logging
import math
import re
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..security.redact import RedactingFilter, Redactor

__all__ = [
    "BatchingHandler",
    "ClientAbortFilter",
    "JsonFormatter",
    "RequestIdFilter",
    "RequestIdMiddleware",
    "TextFormatter",
    "json_log_handler",
    "new_request_id",
    "request_id",
    "request_id_var",
]

request_id_var: ContextVar[str | None] = ContextVar("mcp_gateway_request_id", default=None)

_INCOMING_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")
_RESERVED = ("ts", "level", "logger", "message", "request_id")
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_NOT_EXTRA = _STANDARD_ATTRS | frozenset(_RESERVED)


def new_request_id() -> str:
    return secrets.token_hex(8)


@contextmanager
def request_id(value: str | None = None) -> Iterator[str]:
    """Run a block under a request id (a new one unless given); restores the previous id after."""
    rid = value or new_request_id()
    token = request_id_var.set(rid)
    try:
        yield rid
    finally:
        request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Copies the current request id onto records (for non-JSON formatters: `%(request_id)s`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class ClientAbortFilter(logging.Filter):
    """A client that hangs up mid-request is routine, not a server fault: libraries log it with a
    traceback (`logger.exception`), which floods the log. Such records keep their message, lose the
    traceback and drop to INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and _is_client_abort(record.exc_info[1]):
            record.msg = f"{record.getMessage()} (the client disconnected)"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def _is_client_abort(exc: BaseException) -> bool:
    from starlette.requests import ClientDisconnect

    return isinstance(exc, ClientDisconnect | ConnectionResetError | BrokenPipeError)


class TextFormatter(logging.Formatter):
    """`logging.Formatter`, with `asctime` worked out once per second rather than once per record."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None) -> None:
        super().__init__(fmt, datefmt)
        self._second: tuple[int, str] = (-1, "")  # (second, its text): records come in time order

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = math.floor(record.created)  # the second `time.localtime` shows
        cached = self._second
        if cached[0] != second:
            cached = (second, time.strftime(self.default_time_format, self.converter(record.created)))
            self._second = cached
        return self.default_msec_format % (cached[1], record.msecs)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; never raises on odd `extra` values (they are stringified)."""

    def __init__(self) -> None:
        super().__init__()
        self._encoder = json.JSONEncoder(ensure_ascii=False, default=str, separators=(",", ":"))
        self._second: tuple[int, str] = (-1, "")  # (second, its ISO text up to the seconds)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for name, value in vars(record).items():
            if name not in _NOT_EXTRA:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return self._encoder.encode(entry)

    def _timestamp(self, created: float) -> str:
        """`datetime.fromtimestamp(created, UTC)` in ISO form to the millisecond, with `Z`: its
        rounding (half to even, to the microsecond) done here, the date text made once per second."""
        fraction, whole = math.modf(created)
        second, micros = int(whole), round(fraction * 1e6)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        elif micros < 0:
            second, micros = second - 1, micros + 1_000_000
        cached = self._second
        if cached[0] != second:
            cached = (second, datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")[:-6])
            self._second = cached
        return f"{cached[1]}.{micros // 1000:03d}Z"


def json_log_handler(stream: IO[str] | None = None, *, redactor: Redactor | None = None,
                     level: int | str = logging.INFO) -> logging.Handler:
    """A stream handler writing JSON lines, redacting with `redactor` (a default one if None).

    Attach it to the root logger (`logging.getLogger().addHandler(h)`): its filters then see every
    record, whichever logger it came from.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setLevel(level)
    handler.addFilter(ClientAbortFilter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactingFilter(redactor or Redactor()))
    handler.setFormatter(JsonFormatter())
    return handler


class BatchingHandler(logging.Handler):
    """Hands records to one writer thread that filters (redacts), formats and writes them through
    `writer` a batch at a time, in order.

    Every tool call logs a line; formatting, redaction and the write stay off the caller's thread,
    and the writer wakes once per batch (the first record wakes it; it then waits `linger` seconds
    for more), not once per record: each wake-up costs both threads a GIL hand-over. `close()`
    (also run by `logging.shutdown` at exit) writes everything still queued; records arriving after
    it are written at once, on the caller's thread. Records are formatted when written, so their
    `args` must not change after logging them (the queue handler's usual contract); the request id
    is read when the record is handed over.
    """

    def __init__(self, writer: logging.StreamHandler[Any], *, linger: float = 0.05,
                 max_batch: int = 1000) -> None:
        super().__init__()
        self.writer = writer
        self._linger = linger
        self._max_batch = max_batch
        self._pending: deque[logging.LogRecord] = deque()
        self._wake = threading.Event()
        self._closing = threading.Event()
        # One batch at a time, so lines keep their order; reentrant, as a signal handler may close
        # while its own thread writes.
        self._write_lock = threading.RLock()
        self._thread = threading.Thread(target=self._run, name="mcp-gateway-log-writer", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:
        # No filters of its own and no handler lock: appending to a deque is atomic. The request id
        # lives in a context variable of the logging thread; the writer thread cannot read it.
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        self._pending.append(record)
        if self._closing.is_set():
            self._drain()
        elif not self._wake.is_set():  # the writer clears it before draining: no record is left behind
            self._wake.set()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def flush(self) -> None:
        """Write what is queued now, on the caller's thread."""
        self._drain()

    def close(self) -> None:
        """Write everything queued (after the batch being written, if any) and stop the writer
        thread; idempotent, and safe in a signal handler (it never waits for the thread to end)."""
        self._closing.set()
        self._wake.set()
        self._drain()
        super().close()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._closing.wait(self._linger)  # let a batch gather; close() cuts the wait short
            self._wake.clear()
            self._drain()
            if self._closing.is_set():
                return

    def _drain(self) -> None:
        writer, pending = self.writer, self._pending
        with self._write_lock:
            while pending:
                lines: list[str] = []
                while pending and len(lines) < self._max_batch:
                    record = pending.popleft()
                    try:
                        if writer.filter(record):  # the writer's filters redact
                            lines.append(writer.format(record) + writer.terminator)
                    except Exception:
                        writer.handleError(record)
                if lines:
                    try:
                        writer.stream.write("".join(lines))
                        writer.flush()
                    except Exception:
                        self.handleError(record)


class RequestIdMiddleware:
    """ASGI middleware: one request id per HTTP request, in the context var and `X-Request-ID`."""

    def __init__(self, app: ASGIApp, header: str = "x-request-id") -> None:
        self.app = app
        self.header = header.lower().encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == self.header), None)
        rid = incoming if incoming is not None and _INCOMING_ID.fullmatch(incoming) else new_request_id()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != self.header]
                message = {**message, "headers": [*headers, (self.header, rid.encode())]}
            await send(message)

        with request_id(rid):
            await self.app(scope, receive, send_with_id)
