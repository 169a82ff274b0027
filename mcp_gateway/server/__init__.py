"""Serving a gateway over MCP: the server handlers, and one thin module per transport."""

from ._http import HttpSettings, build_http_app, serve_http
from ._live import LiveGateway
from ._mcp import build_server, initialization_options
from ._protections import Protections, build_protections, key_store
from ._reload import Reloader
from ._stdio import serve_stdio

__all__ = [
    "HttpSettings",
    "LiveGateway",
    "Protections",
    "Reloader",
    "build_http_app",
    "build_protections",
    "build_server",
    "initialization_options",
    "key_store",
    "serve_http",
    "serve_stdio",
]
