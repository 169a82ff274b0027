"""Serve a config file with everything it asks for (auth, limits, audit, reloads): the library's
one entry point for serving, which the CLI's `serve` only calls.

    from mcp_gateway.server import GatewayServer, HttpSettings

    server = GatewayServer.from_config("gateway.yaml", watch=True)
    anyio.run(server.serve_http, HttpSettings(port=8080))
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .._gateway import load_gateway
from ._live import LiveGateway
from ._protections import Protections, build_protections
from ._reload import Reloader

if TYPE_CHECKING:  # each transport is imported by the method that serves it: stdio never loads HTTP
    from starlette.applications import Starlette

    from ._http import HttpSettings

__all__ = ["GatewayServer", "serve"]


@dataclass(slots=True)
class GatewayServer:
    """A loaded config with its protections, ready to serve over stdio or HTTP."""

    live: LiveGateway
    protections: Protections
    reloader: Reloader | None = None

    @classmethod
    def from_config(cls, path: str | Path, *, watch: bool = False,
                    environ: Mapping[str, str] | None = None) -> GatewayServer:
        """Load `path` and build its protections; raises ConfigError with every issue found.
        SIGHUP always reloads the config; `watch` also reloads when a config file changes."""
        env = os.environ if environ is None else environ
        gateway = load_gateway(path, environ=env)
        protections = build_protections(gateway.loaded, env) if gateway.loaded is not None else Protections()
        live = LiveGateway(gateway)
        return cls(live, protections, Reloader(live, path, watch_interval=0.5 if watch else None,
                                                      audit=protections.audit))

    async def serve_stdio(self) -> None:
        """Serve until the client closes stdin."""
        from ._stdio import serve_stdio

        await serve_stdio(self.live, reloader=self.reloader, protections=self.protections)

    async def serve_http(self, settings: HttpSettings | None = None, *, log_level: str = "info") -> None:
        """Serve until interrupted; raises OSError when the address cannot be bound."""
        from ._http import HttpSettings, serve_http

        await serve_http(self.live, settings or HttpSettings(), reloader=self.reloader,
                         protections=self.protections, log_level=log_level)

    def asgi_app(self, settings: HttpSettings | None = None) -> Starlette:
        """The ASGI app, for running under another server (its lifespan starts and stops the gateway)."""
        from ._http import HttpSettings, build_http_app

        return build_http_app(self.live, settings or HttpSettings(), reloader=self.reloader,
                              protections=self.protections)


async def serve(config: str | Path, *, http: HttpSettings | None = None, watch: bool = False,
                log_level: str = "info") -> None:
    """Serve `config` over HTTP when `http` settings are given, else over stdio."""
    server = GatewayServer.from_config(config, watch=watch)
    if http is None:
        await server.serve_stdio()
    else:
        await server.serve_http(http, log_level=log_level)
