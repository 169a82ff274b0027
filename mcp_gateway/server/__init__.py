"""Serving a gateway over MCP: the server handlers, and one thin module per transport."""

from ._mcp import build_server, initialization_options
from ._stdio import serve_stdio

__all__ = ["build_server", "initialization_options", "serve_stdio"]
