"""Serve a gateway over stdio: stdout carries protocol messages only, logs go to stderr."""

from __future__ import annotations

from mcp.server.stdio import stdio_server

from .._gateway import Gateway
from ._mcp import build_server, initialization_options

__all__ = ["serve_stdio"]


async def serve_stdio(gateway: Gateway) -> None:
    """Serve until the client closes stdin."""
    server = build_server(gateway)
    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, initialization_options(server))
    finally:
        await gateway.aclose()
