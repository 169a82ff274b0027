"""A client for any MCP server over stdio, Streamable HTTP or legacy SSE.

    async with connect("mcp-gateway serve gateway.yaml") as client:
        result = await client.call_tool("summarize", {"text": "..."})

Names are imported on first use: the errors and `_spawn` (which starts a stdio server before the
SDK is imported) do not load the SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._connect import GatewayClient, connect, parse_target
    from ._errors import ClientError, ClientTimeoutError, ConnectError, HttpStatusError, RemoteError

__all__ = [
    "ClientError", "ClientTimeoutError", "ConnectError", "GatewayClient", "HttpStatusError", "RemoteError",
    "connect", "parse_target",
]

_MODULES = {
    "ClientError": "._errors", "ClientTimeoutError": "._errors", "ConnectError": "._errors",
    "HttpStatusError": "._errors", "RemoteError": "._errors",
    "GatewayClient": "._connect", "connect": "._connect", "parse_target": "._connect",
}

__getattr__, __dir__ = lazy_exports(__name__, _MODULES, globals())
