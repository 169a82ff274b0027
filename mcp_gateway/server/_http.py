"""Serve a gateway over HTTP: Streamable HTTP at /mcp, legacy HTTP+SSE at /sse + /messages/,
the REST API at /v1/tools (`_rest`), the OpenAI-format API at /v1/chat/completions and
/v1/models (`_chat_api`), and /healthz, from one Starlette app run by uvicorn. Each surface is a
module of routes added here, sharing one call pipeline.

Binds 127.0.0.1 by default with DNS-rebinding protection on (the SDK leaves it off when
transports are built by hand), so a web page cannot reach a local gateway through a hostile name.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.routes import build_resource_metadata_url, create_protected_resource_routes
from mcp.server.lowlevel import Server
from mcp.server.sse import SseServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from pydantic import AnyHttpUrl
from sse_starlette.sse import AppStatus
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..observability.logs import RequestIdMiddleware
from ..security.auth import GatewayBearerBackend
from ..observability.metrics import metrics_endpoint
from ..config import ChatApiConfig
from ._chat_api import chat_routes
from ._catalog_page import catalog_routes
from . import _uvicorn
from ._event_store import InMemoryEventStore
from ._header_timeout import h11_with_header_timeout
from ._http_sessions import CappedSessionManager, too_many_sessions
from ._live import LiveGateway
from ._mcp import build_server, initialization_options
from ._pipeline import CallPipeline
from ._protections import Protections
from ._reload import Reloader
from ._rest import rest_routes

__all__ = ["METRICS_SCOPE", "HttpSettings", "build_http_app", "serve_http"]

log = logging.getLogger("mcp_gateway.http")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
METRICS_SCOPE = "metrics"  # what a token needs to read /metrics when auth is configured


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """How the HTTP transports are served."""

    host: str = "127.0.0.1"
    port: int = 8765
    stateless: bool = False
    json_response: bool = False
    dns_rebinding_protection: bool = True
    allowed_hosts: Sequence[str] = field(default_factory=tuple)
    allowed_origins: Sequence[str] = field(default_factory=tuple)
    max_body_bytes: int = 4 * 1024 * 1024
    session_idle_timeout: float = 30 * 60
    max_sessions: int = 10_000
    max_sessions_per_caller: int | None = 100
    graceful_shutdown_seconds: float = 10.0
    header_timeout: float = 10.0

    def security(self, port: int) -> TransportSecuritySettings:
        hosts = list(self.allowed_hosts)
        # A name without a port (`--allow-host gw.internal`) is allowed on any port.
        hosts += [f"{h}:*" for h in self.allowed_hosts if h.endswith("]") or ":" not in h]
        origins = list(self.allowed_origins)
        if self.host in LOOPBACK or self.host in ("0.0.0.0", "::"):
            hosts += ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost"]
            origins += ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
        if self.host not in LOOPBACK and self.host not in ("0.0.0.0", "::"):
            hosts += [f"{self.host}:*", self.host]
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=self.dns_rebinding_protection,
            allowed_hosts=hosts,
            allowed_origins=origins,
        )


def build_http_app(
    live: LiveGateway,
    settings: HttpSettings,
    *,
    port: int | None = None,
    reloader: Reloader | None = None,
    protections: Protections | None = None,
) -> Starlette:
    """The ASGI app serving `live` on every HTTP transport, behind `protections` when given."""
    guard = protections or Protections()
    pipeline = CallPipeline(live, guard)  # one call path for every surface of this app
    server: Server[Any] = build_server(live, guard, pipeline=pipeline)
    security = settings.security(port if port is not None else settings.port)
    manager = CappedSessionManager(
        app=server,
        event_store=None if settings.stateless else InMemoryEventStore(),
        json_response=settings.json_response,
        stateless=settings.stateless,
        security_settings=security,
        max_request_body_size=settings.max_body_bytes,
        session_idle_timeout=None if settings.stateless else settings.session_idle_timeout,
        max_sessions=settings.max_sessions,
        max_sessions_per_caller=settings.max_sessions_per_caller,
    )
    sse = SseServerTransport("/messages/", security_settings=security, max_request_body_size=settings.max_body_bytes)
    init = initialization_options(server)

    async def sse_stream(scope: Scope, receive: Receive, send: Send) -> None:
        with manager.legacy_stream(scope) as admitted:  # an SSE stream is a protocol session too
            if not admitted:
                await too_many_sessions()(scope, receive, send)
                return
            async with sse.connect_sse(scope, receive, send) as (read, write):
                await server.run(read, write, init)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "tools": len(live.gateway.catalog.tools)})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if guard.audit is not None:
                await stack.enter_async_context(guard.audit)
            if guard.limiter is not None:
                await stack.enter_async_context(guard.limiter)  # renews Redis leases of running calls
            tg = await stack.enter_async_context(anyio.create_task_group())
            tg.start_soon(live.gateway.warm_up)
            if guard.keys is not None:
                tg.start_soon(guard.keys.watch)  # a shared (Redis) key table: follow its changes
            await stack.enter_async_context(manager.run())
            if reloader is not None:
                await reloader.start(tg)
            yield
            tg.cancel_scope.cancel()
        await live.gateway.aclose()
        await guard.aclose()

    auth = _auth_wrapper(guard)

    def protect(app: ASGIApp, scopes: Sequence[str] = ()) -> ASGIApp:
        # The Host first: a refused Host is told which name it used and how to allow it.
        return _HostCheck(auth(app, scopes), security)

    routes: list[BaseRoute] = [
        Route("/mcp", endpoint=protect(StreamableHTTPASGIApp(manager))),
        # Host-checked here too: the SDK's connect_sse answers 421 but then raises (a traceback per request).
        Route("/sse", endpoint=protect(_HostChecked(_Asgi(sse_stream), security)), methods=["GET"]),
        Mount("/messages/", app=protect(sse.handle_post_message)),
        # No auth work at all: a health probe must stay cheap whatever Authorization it carries.
        Route("/healthz", endpoint=healthz, methods=["GET"]),
        *rest_routes(live, guard, pipeline, max_body_bytes=settings.max_body_bytes, security=security),
        *catalog_routes(live, guard, security=security),
    ]
    if guard.verifier is not None and guard.resource_url:
        routes += create_protected_resource_routes(
            resource_url=AnyHttpUrl(guard.resource_url), authorization_servers=[AnyHttpUrl(guard.resource_url)])
    if guard.metrics_enabled:
        # Tool names and usage are not public: behind the Host check, and a token with the `metrics`
        # scope when auth is configured.
        metrics_app = _HostChecked(request_response(metrics_endpoint(guard.metrics)), security)
        routes.append(Route("/metrics", endpoint=protect(metrics_app, [METRICS_SCOPE]), methods=["GET"]))
    middleware = [Middleware(RequestIdMiddleware), Middleware(_RefuseWhileDraining, live=live)]
    if guard.verifier is not None:
        middleware.append(Middleware(_Authenticate, backend=GatewayBearerBackend(guard.verifier)))
    loaded = live.gateway.loaded
    chat_api = loaded.chat_api.value if loaded is not None and loaded.chat_api is not None else ChatApiConfig()
    if chat_api.enabled:
        routes += chat_routes(live, guard, pipeline, max_body_bytes=settings.max_body_bytes, security=security)
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


class _Asgi:
    """A plain ASGI callable that Starlette's Route will not mistake for a request handler."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


class _RefuseWhileDraining:
    """Once a shutdown signal came, a new request (health checks included) gets 503 with
    `Connection: close` before any work: a load balancer retries it on another process
    (`retry-on ... 503`), while the calls already running finish."""

    def __init__(self, app: ASGIApp, live: LiveGateway) -> None:
        self._app = app
        self._live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._live.draining:
            response = JSONResponse({"error": "shutting down: send this request to another process"},
                                    status_code=503, headers={"Retry-After": "1", "Connection": "close"})
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)


class _HostCheck:
    """The DNS-rebinding Host check, answered with a 421 that says which Host was refused and how
    to allow it (the SDK's own check, which runs after this one, says only "Invalid Host header").
    The body is a JSON-RPC error, so MCP clients show the message to their user."""

    def __init__(self, app: ASGIApp, security: TransportSecuritySettings) -> None:
        self._app = app
        self._enabled = security.enable_dns_rebinding_protection
        self._exact = frozenset(security.allowed_hosts)
        self._bases = tuple(h[:-2] + ":" for h in security.allowed_hosts if h.endswith(":*"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._enabled and scope["type"] == "http":
            host = Headers(scope=scope).get("host", "")
            if host not in self._exact and not host.startswith(self._bases):
                response = _misdirected(host)
                log.info("421 for %s: %s", scope.get("path", "?"), json.loads(response.body)["error"]["message"])
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)


def _misdirected(host: str) -> Response:
    shown = host.encode("ascii", "backslashreplace").decode()[:200] if host else ""
    if shown:
        name = shown.rsplit(":", 1)[0] if not shown.endswith("]") else shown
        message = (f"Host '{shown}' is not allowed (DNS-rebinding protection). If this gateway is reached "
                   f"under that name, start it with --allow-host {name} (any port); "
                   "behind a reverse proxy, forward the client's Host instead (nginx: proxy_set_header Host "
                   "$http_host).")
    else:
        message = "the request has no Host header (DNS-rebinding protection): send one."
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}
    return JSONResponse(body, status_code=421)


class _HostChecked:
    """The DNS-rebinding check (Host and Origin) of the MCP transports, for a plain endpoint."""

    def __init__(self, app: ASGIApp, settings: TransportSecuritySettings) -> None:
        self._app = app
        self._check = TransportSecurityMiddleware(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = await self._check.validate_request(Request(scope, receive))
        await (refused or self._app)(scope, receive, send)


PUBLIC_PATHS = ("/healthz", "/.well-known/")  # prefixes served without looking at credentials


class _Authenticate:
    """Who is calling, for every route but the public ones: Starlette's AuthenticationMiddleware
    (the SDK's bearer backend) sets `request.user`, the SDK's AuthContextMiddleware the access
    token that handlers read. It refuses nothing itself: `_auth_wrapper` does on the MCP routes,
    the REST routes answer their own 401. A health probe never costs a token verification."""

    def __init__(self, app: ASGIApp, backend: BearerAuthBackend) -> None:
        self._app = app
        self._authenticated = AuthenticationMiddleware(AuthContextMiddleware(app), backend=backend)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PUBLIC_PATHS):
            await self._app(scope, receive, send)
        else:
            await self._authenticated(scope, receive, send)


def _auth_wrapper(guard: Protections) -> Callable[..., ASGIApp]:
    """Require a valid key or token (and `scopes`) on an endpoint when authentication is configured:
    otherwise 401 with a WWW-Authenticate challenge (403 for a missing scope), and nothing behind it
    runs. The credentials were checked by `_Authenticate`."""
    if guard.verifier is None:
        return lambda app, scopes=(): app
    metadata = build_resource_metadata_url(AnyHttpUrl(guard.resource_url)) if guard.resource_url else None
    return lambda app, scopes=(): _Asgi(RequireAuthMiddleware(app, list(scopes), metadata))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns on TCP_NODELAY for accepted connections only when the
    # listening socket says it is TCP; without it a response sent in two writes waits ~40 ms for
    # the client's delayed ACK (Nagle), which cost 2026-07-28 and SSE calls 40 ms each.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def serve_http(
    live: LiveGateway,
    settings: HttpSettings,
    *,
    reloader: Reloader | None = None,
    protections: Protections | None = None,
    log_level: str = "info",
) -> None:
    """Serve until interrupted; port 0 picks a free port. Announces its URLs on stderr."""
    sock = _bind(settings.host, settings.port)
    port = sock.getsockname()[1]
    app = build_http_app(live, settings, port=port, reloader=reloader, protections=protections)
    config = uvicorn.Config(
        app, log_level=log_level, lifespan="on", access_log=False,
        # No logging config of uvicorn's own: its loggers propagate to ours (JSON, redaction).
        log_config=None,
        http=h11_with_header_timeout(settings.header_timeout),
        # Our drain below decides when streams close; uvicorn's own deadline is only a backstop.
        timeout_graceful_shutdown=round(settings.graceful_shutdown_seconds) + 5,
    )
    server = _uvicorn.Server(config)
    # sse-starlette closes every SSE stream the moment a shutdown signal arrives, which would cut
    # off calls still running; we close them ourselves once those calls are done.
    AppStatus.disable_automatic_graceful_drain()
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{host}:{port}"
    mode = "stateless" if settings.stateless else "stateful"
    log.info("serving %d tools on %s/mcp (Streamable HTTP, %s) and %s/sse (legacy SSE); REST at %s/v1/tools; "
             "health at %s/healthz", len(live.gateway.catalog.tools), base, mode, base, base, base)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_drain_on_exit, server, live, settings.graceful_shutdown_seconds)
            await server.serve(sockets=[sock])
            tg.cancel_scope.cancel()
    finally:
        sock.close()


async def _drain_on_exit(server: _uvicorn.Server, live: LiveGateway, grace: float) -> None:
    """After a shutdown signal, let in-flight calls finish (up to `grace` s), then close streams."""
    await server.exit_requested()
    live.draining = True
    if live.in_flight:
        log.info("shutting down: waiting up to %.0f s for %d call(s) in flight", grace, live.in_flight)
    with anyio.move_on_after(grace):
        while live.in_flight:
            await anyio.sleep(0.05)
        # A handler has returned before its response is written to the stream: let it flush.
        await anyio.sleep(0.25)
    if live.in_flight:
        log.warning("shutting down: cancelling %d call(s) still in flight", live.cancel_calls())
        # Each cancelled call answers with an error result; give those a moment to reach the client.
        with anyio.move_on_after(2):
            while live.in_flight:
                await anyio.sleep(0.02)
            await anyio.sleep(0.25)
    AppStatus.should_exit = True
