"""A client for any MCP server over stdio, Streamable HTTP or legacy SSE.

    async with connect("mcp-gateway serve gateway.yaml") as client:
        result = await client.call_tool("summarize", {"text": "..."})
"""

from ._connect import GatewayClient, connect, parse_target
from ._errors import ClientError, ClientTimeoutError, ConnectError, HttpStatusError, RemoteError

__all__ = [
    "ClientError", "ClientTimeoutError", "ConnectError", "GatewayClient", "HttpStatusError", "RemoteError",
    "connect", "parse_target",
]
