"""Stdin and stdout served as non-blocking pipes on the event loop, not through worker threads."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from mcp_gateway.server._pipes import LineReader, PipeWriter
from tests.conftest import EXAMPLE, ROOT

pytestmark = pytest.mark.anyio


async def _read_all(reader: LineReader, into: list[str]) -> None:
    async for line in reader:
        into.append(line)


async def test_lines_are_cut_at_newlines_wherever_the_reads_fall():
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    lines: list[str] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_read_all, LineReader(read_fd), lines)
            e_acute = "é".encode()
            chunks = (b'{"a":1}\n{"b"', b':2}\n\xff\xfe\n\n', e_acute[:1], e_acute[1:] + b"\n", b"tail")
            for chunk in chunks:
                os.write(write_fd, chunk)
                await wait_all_tasks_blocked()  # the reader has taken it and waits for more
            os.close(write_fd)
    finally:
        os.close(read_fd)
    # Undecodable bytes are replaced, as the SDK's own reader does; a character split across two
    # reads is whole; a last line without a newline still counts.
    assert lines == ['{"a":1}\n', '{"b":2}\n', "\ufffd\ufffd\n", "\n", "é\n", "tail"]


async def test_a_message_larger_than_the_pipe_goes_through_whole_both_ways():
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    message = '{"text":"' + "x" * (3 << 20) + '"}\n'  # 3 MiB: the pipe holds 64 KiB, so the writer waits
    lines: list[str] = []
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_read_all, LineReader(read_fd), lines)
            writer = PipeWriter(write_fd)
            await writer.write(message)
            await writer.write("next\n")
            await writer.flush()
            os.close(write_fd)
    finally:
        os.close(read_fd)
    assert lines == [message, "next\n"]


_CLAIM = textwrap.dedent("""
    import os, sys, anyio
    from mcp_gateway.server._pipes import standard_pipes

    async def main():
        async with standard_pipes() as (stdin, stdout):
            if stdin is None:
                print("fallback", flush=True)
                return
            print("a stray print", flush=True)
            os.write(1, b"a stray write\\n")
            assert os.read(0, 10) == b""  # fd 0 reads the null device while serving
            async for line in stdin:
                await stdout.write("protocol: " + line)
        print("after", os.get_blocking(0), os.get_blocking(1), flush=True)

    anyio.run(main)
""")


def test_while_serving_stray_output_goes_to_stderr_and_the_streams_come_back_after():
    proc = subprocess.run([sys.executable, "-c", _CLAIM], input="one\ntwo\n", capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "protocol: one\nprotocol: two\nafter True True\n"
    assert "a stray print\n" in proc.stderr and "a stray write\n" in proc.stderr


def test_stray_output_goes_nowhere_when_stderr_was_closed_at_start():
    """A launcher may start us with fd 2 closed; the event loop's own descriptors then take that
    number, so stray output must not be pointed at "fd 2" (here: the loop's epoll descriptor)."""
    proc = subprocess.run(["sh", "-c", 'exec "$0" -c "$1" 2>&-', sys.executable, _CLAIM], input="one\ntwo\n",
                          stdout=subprocess.PIPE, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 0
    assert proc.stdout == "protocol: one\nprotocol: two\nafter True True\n"


def test_standard_streams_that_cannot_be_polled_are_left_to_the_sdk(tmp_path: Path):
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:  # a regular file: epoll refuses it
        proc = subprocess.run([sys.executable, "-c", _CLAIM], stdin=subprocess.DEVNULL, stdout=stdout,
                              stderr=subprocess.PIPE, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == "fallback\n"


def test_a_stdio_server_writing_to_a_file_still_answers():
    """Stdout redirected to a file takes the SDK's threaded streams and works the same. Stdin stays
    a pipe, closed only once both answers are in the file: at end of input the server stops, and
    a request still in flight then is not answered (a client closes stdin only when done)."""
    with tempfile.TemporaryFile("w+") as stdout:
        server = subprocess.Popen([sys.executable, "-m", "mcp_gateway", "serve", str(EXAMPLE)],
                                  stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.DEVNULL,
                                  text=True, cwd=ROOT)
        try:
            assert server.stdin is not None
            server.stdin.write(
                '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25",'
                '"capabilities":{},"clientInfo":{"name":"files","version":"0"}}}\n'
                '{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
                '{"jsonrpc":"2.0","id":2,"method":"tools/list"}\n')
            server.stdin.flush()
            deadline = time.monotonic() + 60
            answers = ""
            while not ('"id":1' in answers and '"id":2' in answers) and time.monotonic() < deadline:
                time.sleep(0.02)  # polling the file for the answers: nothing signals a regular file
                stdout.seek(0)
                answers = stdout.read()
            server.stdin.close()
            assert server.wait(timeout=60) == 0
        finally:
            if server.poll() is None:
                server.kill()
    assert '"id":1' in answers and '"id":2' in answers and '"summarize"' in answers


async def test_a_stdio_server_keeps_no_thread_blocked_on_its_pipes():
    """The SDK's own streams park a worker thread in `read(0)` and hand every write to another."""
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    mark = f"MGW_PIPES_TEST={uuid.uuid4().hex}"
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_gateway", "serve", str(EXAMPLE)],
                                   cwd=str(ROOT), env={**os.environ, mark.split("=")[0]: mark.split("=")[1]})
    with tempfile.TemporaryFile("w+") as errors:
        async with Client(stdio_client(params, errlog=errors), mode="auto") as client:
            for _ in range(5):
                result = await client.call_tool("summarize", {"text": "hello there"})
                assert not result.is_error
            (server,) = _children_with(mark)
            threads = sorted(os.listdir(f"/proc/{server}/task"))
    # The event loop's thread and the log writer's (observability/logs.py), nothing else.
    assert len(threads) == 2, threads


def _children_with(variable: str) -> list[int]:
    """Our child processes whose environment holds `variable` (NAME=value)."""
    me, found = str(os.getpid()), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1]
                environ = Path(f"/proc/{entry}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if parent == me and variable.encode() in environ:
                found.append(int(entry))
    return found
