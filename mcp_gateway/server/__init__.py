"""Serving a gateway: `GatewayServer` / `serve` for a config file; below them the call pipeline
every surface shares, the MCP handlers, the REST API, and one thin module per transport.

Names are imported on first use: serving over stdio never loads our HTTP transport, and commands
that only check a config never load the SDK's server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
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

_MODULES = {
    "HttpSettings": "._http", "build_http_app": "._http", "serve_http": "._http", "LiveGateway": "._live",
    "build_server": "._mcp", "initialization_options": "._mcp", "CallPipeline": "._pipeline",
    "ToolCall": "._pipeline", "Protections": "._protections", "build_protections": "._protections",
    "key_store": "._protections", "Reloader": "._reload", "GatewayServer": "._serve", "serve": "._serve",
    "serve_stdio": "._stdio",
}


__getattr__, __dir__ = lazy_exports(__name__, _MODULES, globals())
