"""An idle HTTP gateway sleeps: no 10 Hz poll of uvicorn's, and a shutdown request still ends it at once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime

import anyio
import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mcp_gateway.server import _uvicorn
from mcp_gateway.server._http import _bind

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn runs on asyncio only


class CountingServer(_uvicorn.Server):
    """Counts main-loop passes (each one is a wake-up with nothing to serve)."""

    ticks = 0

    async def on_tick(self, counter: int) -> bool:
        self.ticks += 1
        return await super().on_tick(counter)


async def _hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


@asynccontextmanager
async def running(server_cls: type[uvicorn.Server] = CountingServer) -> AsyncIterator[tuple[uvicorn.Server, str]]:
    app = Starlette(routes=[Route("/", _hello)])
    sock = _bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = server_cls(uvicorn.Config(app, log_level="warning", lifespan="off"))
    done = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve(sockets=[sock])
        finally:
            done.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            while not server.started:
                await anyio.sleep(0.01)
            yield server, f"http://127.0.0.1:{port}"
            server.should_exit = True
            with anyio.fail_after(30):
                await done.wait()
    finally:
        sock.close()


async def test_it_serves_with_a_current_date_header() -> None:
    async with running() as (_, base), httpx2.AsyncClient() as client:
        response = await client.get(base + "/")
        assert response.status_code == 200 and response.text == "hello"
        sent = parsedate_to_datetime(response.headers["date"]).timestamp()
        assert abs(sent - time.time()) < 5


async def test_an_idle_server_does_not_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_uvicorn, "_DATE_REFRESH_S", 3600.0)
    async with running() as (server, _):
        await anyio.sleep(0.5)  # stock uvicorn wakes 5 times in this window
        assert isinstance(server, CountingServer)
        assert server.ticks == 1  # the first pass only


async def test_should_exit_ends_the_server_without_waiting_for_a_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a one-hour refresh, only the wake-up from the setter can end the main loop within the
    # fail_after(30) of `running`.
    monkeypatch.setattr(_uvicorn, "_DATE_REFRESH_S", 3600.0)
    async with running() as (server, base), httpx2.AsyncClient() as client:
        assert (await client.get(base + "/")).status_code == 200
    assert server.should_exit


async def test_exit_requested_wakes_when_a_shutdown_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn's signal handler sets `should_exit`; the HTTP drain waits on `exit_requested()`.
    # (A real SIGTERM is covered by tests/test_shutdown.py: uvicorn re-raises it after serving.)
    monkeypatch.setattr(_uvicorn, "_DATE_REFRESH_S", 3600.0)
    woken = anyio.Event()
    async with running() as (server, _):
        assert isinstance(server, _uvicorn.Server)

        async def wait() -> None:
            await server.exit_requested()
            woken.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()  # the waiter is parked on the event
            assert not woken.is_set()
            server.should_exit = True
            with anyio.fail_after(30):
                await woken.wait()
