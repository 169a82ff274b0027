"""Stdin and stdout as non-blocking pipes, read and written on the event loop.

The SDK's `stdio_server()` reads and writes the standard streams through `anyio.wrap_file`, so
every message in and every message out is a hand-over to a worker thread and back. On a 2-core VM
that cost the server ~450 µs of CPU per `tools/call` round trip, more than the whole gateway
pipeline. `stdio_server(stdin, stdout)` accepts any async line source and writer, so when both
standard streams are pipes or sockets we hand it ours, which wait with `anyio.wait_readable` /
`anyio.wait_writable` instead. Anything else (a terminal, a regular file, Windows) keeps the SDK's
own streams: a terminal must never be left non-blocking, and regular files cannot be polled.

Like the SDK's own claim of the streams, fd 0 reads the null device and fd 1 writes to stderr (the
null device if we were started without one) while serving, so a stray `print` or a child process
cannot corrupt the protocol stream; both are restored on exit.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

__all__ = ["LineReader", "PipeWriter", "standard_pipes"]

_CHUNK = 1 << 16


class LineReader:
    """Newline-terminated lines from a non-blocking descriptor, as text (undecodable bytes replaced,
    as the SDK's own reader does); a last line without a newline is yielded at end of input."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._scanned = 0  # how much of the buffer is known to hold no newline

    def __aiter__(self) -> LineReader:
        return self

    async def __anext__(self) -> str:
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", self._scanned)
            if end >= 0:
                line = bytes(buffer[: end + 1])
                del buffer[: end + 1]
                self._scanned = 0
                return line.decode("utf-8", "replace")
            self._scanned = len(buffer)
            try:
                chunk = os.read(self._fd, _CHUNK)
            except BlockingIOError:
                await anyio.wait_readable(self._fd)
                continue
            if not chunk:
                if not buffer:
                    raise StopAsyncIteration
                line = bytes(buffer)
                buffer.clear()
                self._scanned = 0
                return line.decode("utf-8", "replace")
            buffer += chunk


class PipeWriter:
    """Writes text to a non-blocking descriptor, waiting for room when the reader falls behind.

    Each `write` has reached the pipe when it returns, so `flush` has nothing to do.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def write(self, text: str) -> None:
        view = memoryview(text.encode("utf-8"))
        while view:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                await anyio.wait_writable(self._fd)
                continue
            view = view[written:]

    async def flush(self) -> None:
        return None


def _pollable(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def standard_pipes() -> AsyncIterator[tuple[Any, Any]]:
    """Yields `(stdin, stdout)` for `stdio_server(stdin, stdout)`: our event-loop streams when fd 0
    and fd 1 are both pipes or sockets, else `(None, None)` (the SDK then claims the streams itself).
    """
    if sys.platform == "win32" or not (_pollable(0) and _pollable(1)):
        yield None, None
        return
    import fcntl

    sys.stdout.flush()  # nothing written before serving may land after the first message
    wire_in = fcntl.fcntl(0, fcntl.F_DUPFD_CLOEXEC, 3)
    wire_out = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    null = os.open(os.devnull, os.O_RDWR)
    # If we were started with fd 2 closed (Python then sets `sys.__stderr__` to None), that number
    # now belongs to whatever the process opened first, e.g. the event loop's epoll descriptor:
    # stray output goes to the null device instead.
    sink = 2 if sys.__stderr__ is not None else null
    blocking = os.get_blocking(wire_in), os.get_blocking(wire_out)
    try:
        os.dup2(null, 0)
        os.dup2(sink, 1)
        os.set_blocking(wire_in, False)
        os.set_blocking(wire_out, False)
        yield LineReader(wire_in), PipeWriter(wire_out)
    finally:
        # The flag belongs to the open pipe, which the process that started us may share.
        os.set_blocking(wire_in, blocking[0])
        os.set_blocking(wire_out, blocking[1])
        sys.stdout.flush()  # stray output still buffered goes to stderr, where it was written
        os.dup2(wire_in, 0)
        os.dup2(wire_out, 1)
        for fd in (wire_in, wire_out, null):
            os.close(fd)
