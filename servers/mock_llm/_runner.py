"""Serving helpers: bind a loopback socket, run uvicorn in-process, report the real URL.

Binding the socket ourselves (instead of letting uvicorn do it) is what makes ``port=0`` usable:
the kernel picks a free port and we can read it back before serving.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette

from ._app import create_app

#: Listen backlog large enough for the 1000-concurrent-connections load test.
BACKLOG = 4096


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and return a listening TCP socket (``port=0`` lets the OS choose)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def socket_url(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket (IPv6 hosts bracketed)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def server_config(app: Starlette, **options: Any) -> uvicorn.Config:
    """uvicorn settings shared by the CLI and the in-process runner."""
    settings: dict[str, Any] = {
        "lifespan": "off",
        "access_log": False,
        "log_config": None,
        "backlog": BACKLOG,
        "timeout_graceful_shutdown": 2,
        "timeout_keep_alive": 30,
    }
    settings.update(options)
    return uvicorn.Config(app, **settings)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves process signal handlers alone (it is hosted inside another program)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@asynccontextmanager
async def running_mock_llm(
    app: Starlette | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    default_faults: str | None = None,
    startup_timeout: float = 10.0,
) -> AsyncIterator[str]:
    """Serve a mock LLM app on ``host:port`` for the duration of the block and yield its base URL.

    Pass your own ``app`` (from :func:`create_app`) to inspect ``app.state.mock_llm`` directly;
    otherwise one is created with ``default_faults``.
    """
    if app is None:
        app = create_app(default_faults=default_faults)
    elif default_faults is not None:
        raise ValueError("pass default_faults to create_app() when supplying an app")
    sock = bind_socket(host, port)
    server = _EmbeddedServer(server_config(app))
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(server.serve, [sock])
            with anyio.fail_after(startup_timeout):
                while not server.started:
                    await anyio.sleep(0.005)
            try:
                yield socket_url(sock)
            finally:
                server.should_exit = True
    finally:
        sock.close()
