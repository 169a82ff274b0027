"""The stdio transport for a server started before the SDK is imported (`client/_spawn.py`): the
CLI's client commands start their server first, so that the two processes import at once."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

import anyio
import mcp_types as types
import pytest
from mcp.shared.message import SessionMessage

from mcp_gateway.client import ConnectError, connect
from mcp_gateway.client._spawn import process_streams, start_server
from tests.conftest import EXAMPLE, serve_command

pytestmark = pytest.mark.anyio


def _request(i: int) -> SessionMessage:
    return SessionMessage(types.JSONRPCRequest(jsonrpc="2.0", id=i, method="ping"))


async def test_messages_round_trip_in_order_and_the_server_exits_with_stdin() -> None:
    with tempfile.TemporaryFile("w+") as errlog:
        echo = start_server([sys.executable, "-c", "import sys\nfor line in sys.stdin: print(line, end='', flush=True)"],
                            env=None, errlog=errlog)
        async with process_streams(echo) as (read, write):
            for i in range(50):
                await write.send(_request(i))
            ids = [(await read.receive()).message.id for _ in range(50)]
        assert ids == list(range(50))
        assert echo.returncode == 0  # it saw its stdin close and exited on its own


async def test_a_line_that_is_not_json_rpc_reaches_the_session_as_an_error() -> None:
    with tempfile.TemporaryFile("w+") as errlog:
        talker = start_server([sys.executable, "-c", "print('not json', flush=True); import sys; sys.stdin.read()"],
                              env=None, errlog=errlog)
        async with process_streams(talker) as (read, _write):
            assert isinstance(await read.receive(), ValueError)


async def test_a_server_that_ignores_its_stdin_closing_is_terminated() -> None:
    with tempfile.TemporaryFile("w+") as errlog:
        stubborn = start_server([sys.executable, "-c", "import time\nwhile True: time.sleep(1)"], env=None, errlog=errlog)
        started = time.monotonic()
        async with process_streams(stubborn):
            pass
        assert stubborn.returncode is not None and stubborn.returncode < 0  # ended by a signal
        assert time.monotonic() - started < 10


async def test_the_end_of_the_servers_output_ends_the_stream() -> None:
    with tempfile.TemporaryFile("w+") as errlog:
        quitter = start_server([sys.executable, "-c", "pass"], env=None, errlog=errlog)
        async with process_streams(quitter) as (read, _write):
            with pytest.raises(anyio.EndOfStream):
                await read.receive()


async def test_connect_speaks_mcp_to_a_started_gateway() -> None:
    with tempfile.TemporaryFile("w+") as errlog:
        server = start_server(serve_command(EXAMPLE), env=None, errlog=errlog)
        async with connect(server, timeout=60) as client:
            result = await client.call_tool("summarize", {"text": "hello"})
            assert not result.is_error
        assert server.returncode is not None


def test_a_command_that_cannot_start_is_a_connect_error() -> None:
    with tempfile.TemporaryFile("w+") as errlog, pytest.raises(ConnectError, match="^connection failed: FileNotFound"):
        start_server("/nonexistent/server-binary --flag", env=None, errlog=errlog)


def test_starting_a_server_does_not_import_the_sdk() -> None:
    """What lets the server start first: the client side reaches `start_server` without the SDK."""
    code = ("import sys\n"
            "import mcp_gateway.cli._main, mcp_gateway.cli._target, mcp_gateway.client._spawn\n"
            "assert not [m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')], 'SDK imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
