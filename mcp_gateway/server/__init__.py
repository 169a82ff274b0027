"""Serving a gateway: `GatewayServer` / `serve` for a config file; below them the call pipeline
every surface shares, the MCP handlers, the REST API, and one thin module per transport."""

from ._http import HttpSettings, build_http_app, serve_http
from ._live import LiveGateway
from ._mcp import build_server, initialization_options
from ._pipeline import CallPipeline, ToolCall
from ._protections import Protections, build_protections, key_store
from ._reload import Reloader
from ._serve import GatewayServer, serve
from ._stdio import serve_stdio

__all__ = [
    "CallPipeline",
    "GatewayServer",
    "HttpSettings",
    "LiveGateway",
    "Protections",
    "Reloader",
    "ToolCall",
    "build_http_app",
    "build_protections",
    "build_server",
    "initialization_options",
    "key_store",
    "serve",
    "serve_http",
    "serve_stdio",
]
