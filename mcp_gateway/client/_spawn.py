"""Start a stdio server before the MCP SDK is imported, and speak to it over its pipes.

Why: importing the SDK takes most of a second (its `mcp/__init__` loads client and server alike),
and the SDK's `stdio_client` can only start the server after that import, so a command-line
`call` paid for two SDK imports one after the other: ours, then the server's. Starting the server
first lets both imports run at once, on two cores. The SDK offers no way to hand `stdio_client`
a process already started, so `process_streams` is the transport for one: the same line framing,
message parsing and shutdown sequence (close stdin, wait, then end the process group) as the
SDK's, on the pipes of a `subprocess.Popen`. Only this module's top level is free of the SDK.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, TextIO

from ._command import server_argv
from ._errors import ConnectError

__all__ = ["can_start_early", "process_streams", "start_server"]

_EXIT_GRACE_S = 2.0  # for the server to exit on its own once its stdin is closed (as the SDK waits)
_TERM_GRACE_S = 2.0  # after SIGTERM, before SIGKILL
_FLUSH_S = 0.5  # for messages already accepted to be written before stdin closes
_READ_SIZE = 65536


def can_start_early(target: str | Sequence[str]) -> bool:
    """Whether `target` is a command line this module can start (POSIX pipes; not a URL)."""
    return os.name == "posix" and not (isinstance(target, str) and target.startswith(("http://", "https://")))


def start_server(target: str | Sequence[str], *, env: Mapping[str, str] | None, errlog: TextIO) -> subprocess.Popen[bytes]:
    """Start the server `target` names, inheriting our environment plus `env`; its stderr goes to
    `errlog` (a real file). In its own session, so that stopping it reaches its children too."""
    argv = server_argv(target)
    try:
        return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    except (OSError, ValueError) as exc:  # the same words as a failed start under the SDK's transport
        raise ConnectError(f"connection failed: {type(exc).__name__}: {exc}") from None


@asynccontextmanager
async def process_streams(process: subprocess.Popen[bytes]) -> AsyncIterator[tuple[Any, Any]]:
    """The (read, write) message streams the SDK's `Client` takes, over `process`'s pipes; on
    exit the server is stopped as the SDK's stdio transport stops it."""
    import anyio
    import mcp_types as types
    from mcp.shared.message import SessionMessage

    assert process.stdin is not None and process.stdout is not None
    out_fd, in_fd = process.stdout.fileno(), process.stdin.fileno()
    os.set_blocking(out_fd, False)
    os.set_blocking(in_fd, False)
    to_session, read_stream = anyio.create_memory_object_stream[Any](0)
    write_stream, from_session = anyio.create_memory_object_stream[Any](0)

    def parse(line: bytes) -> Any:
        try:
            return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
        except ValueError as exc:  # handed to the session as a value, as the SDK does
            return exc

    async def read_stdout() -> None:
        """Deliver each line until EOF; once the session is gone, keep draining so that a server
        writing to a full pipe can still see its stdin close and exit."""
        buffer, delivering = b"", True
        async with to_session:
            while True:
                await anyio.wait_readable(out_fd)
                try:
                    chunk = os.read(out_fd, _READ_SIZE)
                except BlockingIOError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                if not delivering:
                    continue
                *lines, buffer = (buffer + chunk).split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    try:
                        await to_session.send(parse(line))
                    except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                        delivering = False
                        break

    writer_scope = anyio.CancelScope()
    writer_done = anyio.Event()

    async def write_stdin() -> None:
        try:
            with writer_scope:
                async with from_session:
                    async for message in from_session:
                        data = (message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n").encode()
                        while data:
                            await anyio.wait_writable(in_fd)
                            try:
                                data = data[os.write(in_fd, data):]
                            except BlockingIOError:
                                continue
        except OSError:  # the server closed its stdin (or died): the session sees the connection end
            await to_session.aclose()
        finally:
            writer_done.set()

    async def stop() -> None:
        with suppress(OSError):
            process.stdin.close()  # type: ignore[union-attr]
        if not await _exited(process, _EXIT_GRACE_S):
            _signal_group(process, signal.SIGTERM)
            if not await _exited(process, _TERM_GRACE_S):
                _signal_group(process, signal.SIGKILL)
                await _exited(process, _TERM_GRACE_S)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read_stdout)
        tg.start_soon(write_stdin)
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):  # the server must be stopped even when cancelled
                read_stream.close()
                write_stream.close()
                with anyio.move_on_after(_FLUSH_S):  # what the session already handed over goes out
                    await writer_done.wait()
                writer_scope.cancel()
                await writer_done.wait()
                await stop()
            tg.cancel_scope.cancel()
    process.stdout.close()


async def _exited(process: subprocess.Popen[bytes], within: float) -> bool:
    import anyio

    with anyio.move_on_after(within):
        while process.poll() is None:
            await anyio.sleep(0.01)
    return process.returncode is not None


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with suppress(OSError):  # gone already
        os.killpg(process.pid, signum)
