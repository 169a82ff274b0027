"""Shared fixtures: the anyio backend, paths, and gateway servers started as real subprocesses."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mcp_gateway.client import GatewayClient, connect
from tests.redis_server import RedisServer, RedisServerError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "gateway.yaml"


class StdoutMessages:
    """The JSON-RPC messages a stdio server wrote, read from its stdout's file descriptor.

    `select` on the buffered file object would be wrong: two lines that arrive in one read leave
    the second in the object's buffer, where `select` cannot see it, and the reader then waits for
    output that never comes."""

    def __init__(self, proc: subprocess.Popen[Any]) -> None:
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._pending = b""
        self.messages: list[dict[str, Any]] = []

    def until(self, done: Callable[[list[dict[str, Any]]], bool], *, timeout: float = 30,
              what: str = "an answer") -> list[dict[str, Any]]:
        """Read until `done(messages)` holds (failing after `timeout` seconds); every message so far."""
        deadline = time.monotonic() + timeout
        while not done(self.messages):
            ready, _, _ = select.select([self._fd], [], [], max(deadline - time.monotonic(), 0))
            assert ready, f"no {what} within {timeout} s; got {self.messages}"
            assert self._read(), f"the server closed stdout before {what}"
        return self.messages

    def answered(self, *ids: Any, timeout: float = 30) -> list[dict[str, Any]]:
        """Read until every request id in `ids` has its response."""
        def done(messages: list[dict[str, Any]]) -> bool:
            return set(ids) <= {m.get("id") for m in messages if "result" in m or "error" in m}
        return self.until(done, timeout=timeout, what=f"answer to ids {sorted(map(str, ids))}")

    def rest(self) -> list[dict[str, Any]]:
        """Read to the end of the stream (the server closed stdout); every message."""
        while self._read():
            pass
        return self.messages

    def _read(self) -> bool:
        chunk = os.read(self._fd, 65536)
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        self.messages += [json.loads(line) for line in lines if line.strip()]  # one message per line
        return bool(chunk)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def serve_command(config: Path | str) -> list[str]:
    """The command an MCP client runs to start the gateway over stdio."""
    return [sys.executable, "-m", "mcp_gateway", "serve", str(config), "--log-level", "warning"]


@pytest.fixture(params=["legacy", "auto"], ids=["handshake-era", "2026-07-28"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both protocol eras: the initialize handshake and the 2026-07-28 per-request protocol."""
    return request.param


@pytest.fixture
def stdio_gateway(mode: str) -> Callable[..., Any]:
    """Start `mcp-gateway serve CONFIG` as a subprocess and connect the SDK-based client to it."""

    @asynccontextmanager
    async def start(config: Path | str = EXAMPLE) -> AsyncIterator[GatewayClient]:
        async with connect(serve_command(config), mode=mode, timeout=30) as client:  # type: ignore[arg-type]
            yield client

    return start


class RunningServer:
    """A `mcp-gateway serve --transport http` subprocess; its stderr is collected in `log`."""

    def __init__(self, base_url: str, proc: subprocess.Popen[str], log: list[str]) -> None:
        self.base_url = base_url
        self.proc = proc
        self.log = log


@contextmanager
def http_gateway(config: Path | str = EXAMPLE, *extra: str) -> Iterator[RunningServer]:
    """Start the gateway over HTTP on a free loopback port; stop it (SIGINT, then kill) afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_gateway", "serve", str(config), "--transport", "http", "--port", "0",
         "--log-level", "info", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    log: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def drain() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            match = re.search(r"serving \d+ tools on (http://\S+)/mcp", line)
            if match:
                url.append(match.group(1))
                found.set()
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        assert found.wait(30) and url, "gateway did not start:\n" + "".join(log)
        _wait_healthy(url[0])
        yield RunningServer(url[0], proc, log)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_log(log: list[str], needle: str, count: int = 1, timeout: float = 20) -> None:
    """Wait until `needle` appears on `count` lines of a server's collected stderr (`log`, filled
    by a reader thread); fail after `timeout` seconds, showing what was logged."""
    deadline = time.monotonic() + timeout
    while sum(needle in line for line in list(log)) < count:
        assert time.monotonic() < deadline, f"never logged {needle!r}:\n" + "".join(log)
        time.sleep(0.05)


def _wait_healthy(base_url: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx2.get(base_url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        assert time.monotonic() < deadline, "gateway never became healthy"
        time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server on a free loopback port, not persisted; fails (never skips) without the binary."""
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    problem = None
    try:
        server.start()
    except RedisServerError as exc:
        problem = str(exc)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session-wide redis-server (tests isolate themselves with a key prefix)."""
    return redis_server.url
