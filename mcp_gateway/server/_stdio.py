"""Serve a gateway over stdio: stdout carries protocol messages only, logs go to stderr."""

from __future__ import annotations

import anyio
from mcp.server.stdio import stdio_server

from ._live import LiveGateway
from ._mcp import build_server, initialization_options
from ._reload import Reloader

__all__ = ["serve_stdio"]


async def serve_stdio(live: LiveGateway, *, reloader: Reloader | None = None) -> None:
    """Serve until the client closes stdin."""
    server = build_server(live)
    try:
        async with anyio.create_task_group() as tg:
            if reloader is not None:
                tg.start_soon(reloader.run, tg)
            async with stdio_server() as (read_stream, write_stream):
                await server.run(read_stream, write_stream, initialization_options(server))
            tg.cancel_scope.cancel()
    finally:
        await live.gateway.aclose()
