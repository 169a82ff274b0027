"""Serve a gateway over stdio: stdout carries protocol messages only, logs go to stderr."""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
from mcp.server.stdio import stdio_server

from ._live import LiveGateway
from ._mcp import build_server, initialization_options
from ._pipes import standard_pipes
from ._protections import Protections
from ._reload import Reloader

__all__ = ["serve_stdio"]


async def serve_stdio(
    live: LiveGateway, *, reloader: Reloader | None = None, protections: Protections | None = None
) -> None:
    """Serve until the client closes stdin."""
    guard = protections or Protections()
    server = build_server(live, guard)
    try:
        async with AsyncExitStack() as stack:
            if guard.audit is not None:
                await stack.enter_async_context(guard.audit)
            if guard.limiter is not None:
                await stack.enter_async_context(guard.limiter)  # renews Redis leases of running calls
            tg = await stack.enter_async_context(anyio.create_task_group())
            tg.start_soon(live.gateway.warm_up)
            if reloader is not None:
                await reloader.start(tg)
            async with standard_pipes() as (stdin, stdout), stdio_server(stdin, stdout) as (read_stream, write_stream):
                await server.run(read_stream, write_stream, initialization_options(server))
            tg.cancel_scope.cancel()
    finally:
        await live.gateway.aclose()
        await guard.aclose()
