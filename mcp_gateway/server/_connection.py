"""The one place that reaches into the SDK for a handshake-era connection.

`ctx.session` is a per-request wrapper; the connection behind it lives as long as the client is
connected and carries per-connection state. The SDK (2.3) has no public accessor for it yet; when
it gets one, only this function changes.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerRequestContext

__all__ = ["connection_of"]


def connection_of(ctx: ServerRequestContext[Any]) -> Any:
    """The connection a request arrived on: `.state` (a dict), `.exit_stack`, `send_*_list_changed()`."""
    return ctx.session._connection
