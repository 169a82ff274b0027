"""REST: every served prompt tool as an HTTP API, through the same call pipeline as MCP.

    POST   /v1/tools/{name}           the arguments as the JSON body; 200 with the answer and usage
    POST   /v1/tools/{name}@{version} the same, pinned to a version: 1.4.0, 1.4 or 1 (404 when not served;
                                      `{name}.v1` and `{name}.<label>` work too, as over MCP)
    GET    /v1/tools                  the tools this caller may see
    POST   /v1/sessions               start a session (X-Session-Id or `session_id` continues it)
    DELETE /v1/sessions/{id}          end it
    GET    /openapi.json              OpenAPI 3.1, generated from the catalog (see `_openapi`)

Streaming: `Accept: text/event-stream` or `?stream=true` answers with SSE `delta` events (the
model's text as it arrives) and one final `result` (or, once text was sent, `error`) event; a
client that disconnects cancels the call and with it the provider request (so does one that leaves
before a plain JSON answer: `_disconnect`). Every error is RFC 9457 problem details,
rendered by the one boundary table (`_boundary.problem`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._errors import ArgumentError, GatewayError, Violation
from .._gateway import ToolAnswer
from .._protocol import SESSION_ARGUMENT
from ..security import BodySizeLimitMiddleware
from ..sessions import SessionError, SessionManager
from ._boundary import PROBLEM_TYPE_PREFIX, problem
from ._deprecation import version_headers
from ._disconnect import CLIENT_CLOSED, until_disconnect
from ._live import LiveGateway
from ._openapi import openapi_document, tool_summary
from ._pipeline import CallPipeline, ToolCall
from ._protections import Protections
from ._views import version_meta

__all__ = ["SESSION_HEADER", "is_json", "rest_routes", "tool_result"]

log = logging.getLogger("mcp_gateway.rest")

SESSION_HEADER = "X-Session-Id"
PROBLEM = "application/problem+json"


def tool_result(answer: ToolAnswer, *, with_structured: bool, session_id: str | None) -> dict[str, Any]:
    """The 200 body of a tool call: the answer, then how it was reached (the MCP result's `_meta`)."""
    body: dict[str, Any] = {"text": answer.text}
    if with_structured:
        body["structured"] = answer.structured
    body.update(answer.describe())
    if session_id is not None:
        body["session_id"] = session_id
    return body


class _Problem(Response):
    media_type = PROBLEM


def _problem_response(status: int, slug: str, title: str, detail: str,
                      headers: dict[str, str] | None = None) -> Response:
    body = {"type": PROBLEM_TYPE_PREFIX + slug, "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)


def rest_routes(live: LiveGateway, guard: Protections, pipeline: CallPipeline, *,
                max_body_bytes: int | None = None,
                security: TransportSecuritySettings | None = None) -> list[BaseRoute]:
    """The REST routes, for mounting into the gateway's one Starlette app. `security` applies the
    MCP transports' Host/Origin checks (DNS-rebinding protection) to REST requests too. The caller's
    credentials were verified by the app's authenticating middleware; these routes answer 401
    themselves, as problem details."""
    checker = TransportSecurityMiddleware(security) if security is not None else None

    def error_response(exc: BaseException) -> Response:
        if not isinstance(exc, GatewayError):
            log.error("REST request failed unexpectedly", exc_info=exc)
        status, body, headers = problem(exc, redact=guard.redactor.redact_text)
        return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM)

    async def refuse(request: Request) -> Response | None:
        """A web page on another origin (or behind a rebound DNS name) gets 403/421; then 401 with a
        Bearer challenge when authentication is on and the request has no valid credentials."""
        if checker is not None and (rejected := await checker.validate_request(request)) is not None:
            if rejected.status_code == 403:
                return _problem_response(403, "origin-not-allowed", "Origin not allowed",
                                         "this Origin may not call the gateway (see --allow-origin)")
            return _problem_response(421, "host-not-allowed", "Host not allowed",
                                     "this Host header is not served here (see --allow-host)")
        if guard.verifier is None or isinstance(request.user, AuthenticatedUser):
            return None
        given = "authorization" in request.headers
        challenge = 'Bearer realm="mcp-gateway"'
        if given:
            challenge += ', error="invalid_token", error_description="the key or token is not valid"'
        if guard.resource_url:
            challenge += f', resource_metadata="{guard.resource_url.rstrip("/")}/.well-known/oauth-protected-resource"'
        return _problem_response(401, "unauthorized", "Unauthorized",
                                 "the key or token is not valid" if given else "this endpoint needs a bearer key or token",
                                 {"WWW-Authenticate": challenge})

    async def list_tools(request: Request) -> Response:
        if (refused := await refuse(request)) is not None:
            return refused
        scopes = guard.caller().scopes
        base = str(request.base_url).rstrip("/")
        tools = [tool_summary(live.gateway, t, base, listed_name=name) for name, t in live.gateway.catalog.tools.listed()
                 if scopes.allows_tool(t.name)]
        return JSONResponse({"tools": tools})

    async def openapi(request: Request) -> Response:
        if (refused := await refuse(request)) is not None:
            return refused
        return JSONResponse(openapi_document(live.gateway, guard, guard.caller().scopes.allows_tool))

    async def call_tool(request: Request) -> Response:
        if (refused := await refuse(request)) is not None:
            return refused
        name, _, version = request.path_params["name"].partition("@")
        if not is_json(request):
            # Also what keeps a web page from posting a form or text/plain body (no CORS preflight).
            return _problem_response(415, "unsupported-media-type", "Unsupported media type",
                                     "send the arguments as a JSON object with Content-Type: application/json")
        try:
            arguments = await _json_object(request, name)
        except GatewayError as exc:
            return error_response(exc)
        handle = arguments.pop(SESSION_ARGUMENT, None)
        header = request.headers.get(SESSION_HEADER)
        call = ToolCall(name, arguments, guard.caller(), version=version or None,
                        session_handle=header or (handle if isinstance(handle, str) else None))
        if _wants_stream(request):
            return _EventStream(pipeline, call, error_response, live)
        try:
            answer = await until_disconnect(request.receive, lambda: pipeline.run(call))
        except ClientDisconnect:
            log.info("tool=%s: the client went away; cancelled the call", call.name)
            return Response(status_code=CLIENT_CLOSED)  # nobody reads it; middleware sees 499
        except Exception as exc:
            return error_response(exc)
        registry = live.gateway.catalog.tools
        return JSONResponse(_result(live, call, answer), headers=version_headers(
            answer.tool, registry.successor(answer.tool), loaded_at=live.gateway.loaded_at))

    async def start_session(request: Request) -> Response:
        if (refused := await refuse(request)) is not None:
            return refused
        try:
            manager = _sessions(live)
            record = await manager.start(guard.caller().principal)
        except GatewayError as exc:
            return error_response(exc)
        return JSONResponse({"session_id": record.id, "expires_at": record.idle_expires_at}, status_code=201)

    async def end_session(request: Request) -> Response:
        if (refused := await refuse(request)) is not None:
            return refused
        try:
            manager = _sessions(live)
            record = await manager.end(request.path_params["session_id"], guard.caller().principal)
        except GatewayError as exc:
            return error_response(exc)
        return JSONResponse({"session_id": record.id, "ended": True, "turns": record.turn_count})

    def limited(endpoint: Callable[[Request], Any]) -> ASGIApp:
        app = _RequestApp(endpoint)
        return BodySizeLimitMiddleware(app, max_body_bytes) if max_body_bytes is not None else app

    return [
        Route("/v1/tools", endpoint=list_tools, methods=["GET"]),
        Route("/v1/tools/{name}", endpoint=limited(call_tool), methods=["POST"]),
        Route("/v1/sessions", endpoint=limited(start_session), methods=["POST"]),
        Route("/v1/sessions/{session_id}", endpoint=end_session, methods=["DELETE"]),
        Route("/openapi.json", endpoint=openapi, methods=["GET"]),
    ]


class _RequestApp:
    """A request handler as a plain ASGI app, so middleware (the body limit) can wrap it."""

    def __init__(self, endpoint: Callable[[Request], Any]) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


def _sessions(live: LiveGateway) -> SessionManager:
    manager = live.gateway.sessions
    if manager is None:
        raise SessionError("this gateway has no sessions (add a 'sessions:' section to its config)")
    return manager


def is_json(request: Request) -> bool:
    """JSON content type; an empty body may come without one."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _wants_stream(request: Request) -> bool:
    if request.query_params.get("stream", "").lower() in ("true", "1"):
        return True
    return "text/event-stream" in request.headers.get("accept", "")


async def _json_object(request: Request, tool: str) -> dict[str, Any]:
    """The body as a JSON object ({} when empty); ArgumentError for anything else."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ArgumentError(tool, [Violation("$", f"the body is not valid JSON ({type(exc).__name__})")]) from None
    if not isinstance(value, dict):
        raise ArgumentError(tool, [Violation("$", "the body must be a JSON object of the tool's arguments")])
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _result(live: LiveGateway, call: ToolCall, answer: ToolAnswer) -> dict[str, Any]:
    body = tool_result(answer, with_structured=live.gateway.output_schema_of(answer.tool) is not None,
                       session_id=call.session.id if call.session is not None else None)
    body["tool"] = version_meta(answer.tool, live.gateway.catalog.tools.successor(answer.tool))
    return body


def _event(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False, allow_nan=False)}\n\n".encode()


class _EventStream:
    """An SSE answer that runs the call while it streams; a client disconnect cancels the call.

    The 200 and the event-stream headers go out with the first piece of text: a call refused or
    failed before that (unknown tool, rate limit, provider down) is an ordinary problem response
    with its own status. After that, a failure is the stream's final `error` event."""

    def __init__(self, pipeline: CallPipeline, call: ToolCall, error_response: Callable[[BaseException], Response],
                 live: LiveGateway) -> None:
        self.pipeline = pipeline
        self.call = call
        self.error_response = error_response
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def emit(chunk: bytes) -> None:
            nonlocal started
            if not started:
                started = True
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-store"),
                    (b"x-accel-buffering", b"no")]})
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        async def on_text(piece: str) -> None:
            await emit(_event("delta", {"text": piece}))

        self.call.on_text = on_text
        failed: Response | None = None

        async def run_call() -> None:
            nonlocal failed
            try:
                answer = await self.pipeline.run(self.call)
                await emit(_event("result", _result(self.live, self.call, answer)))
            except Exception as exc:
                failed = self.error_response(exc)
                if started:
                    await emit(_event("error", json.loads(bytes(failed.body))))

        try:
            await until_disconnect(receive, run_call)
        except ClientDisconnect:
            log.info("tool=%s: the client went away; cancelled the call", self.call.name)
            return
        if not started and failed is not None:
            await failed(scope, receive, send)
        elif started:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
