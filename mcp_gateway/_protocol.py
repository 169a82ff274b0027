"""Names mcp-gateway adds to the MCP wire, shared by the server and the client."""

from __future__ import annotations

__all__ = ["META_PREFIX", "SESSION_ARGUMENT", "SESSION_META_KEY"]

META_PREFIX = "mcp-gateway/"
SESSION_META_KEY = META_PREFIX + "session"  # the session handle, in a request's or result's _meta
SESSION_ARGUMENT = "session_id"  # the same handle as a tool argument, for clients that cannot set _meta
