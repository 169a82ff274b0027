"""The unified API: OpenAI Chat Completions over the model aliases, mounted into the HTTP app.

`POST /v1/chat/completions` sends a request to the route its `model` names (an alias from
`models:`, or `provider/model` when `chat_api.direct_models` allows it), so an alias' fallback,
retries, breaker, hedging, fan-out, budgets and cost accounting apply; the answer comes back in
OpenAI's shape whichever provider gave it. `GET /v1/models` lists the aliases the caller may use.

A thin adapter: each call runs through the shared `CallPipeline` (method `chat/completions`:
scopes `models:NAME`, size and rate limits, deadline, accounting, metrics and audit as for a tool
call), and each error gets its status from the one error table (`_boundary`), rendered in
OpenAI's `{"error": {"message", "type", "param", "code"}}` shape so the official SDK raises its
own exception classes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from jsonschema import Draft202012Validator
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .._errors import GatewayError, ModelNotFoundError
from .._fanout import returns_every_answer
from ..providers import Completion
from ..routing import Routed
from ..security import RequestLimitError
from ..security.limits import check_message_count
from ._boundary import problem
from ._disconnect import CLIENT_CLOSED, until_disconnect
from ._chat_format import (
    ChatCall,
    ChatRequestError,
    call_body,
    chunk,
    completion_body,
    completions_of,
    error_body,
    finish_of,
    gateway_info,
    new_id,
    parse_chat_request,
)
from ._live import LiveGateway
from ._pipeline import CHAT, CallPipeline, ToolCall
from ._protections import Caller, Protections
from ._rest import is_json

__all__ = ["chat_routes"]

log = logging.getLogger("mcp_gateway.chat_api")

# OpenAI's error `type` for each status the error table can give.
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota",
          403: "permission_error", 404: "invalid_request_error", 410: "invalid_request_error",
          413: "invalid_request_error", 429: "rate_limit_error", 504: "timeout_error"}


class _Unauthenticated(Exception):
    """No valid key or token where authentication is required."""


class _Refused(Exception):
    """A request turned away before anything runs (a foreign Origin or Host, a non-JSON body)."""

    def __init__(self, status: int, message: str, kind: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(message, kind, code=code)


def error_response(exc: BaseException, guard: Protections) -> Response:
    """`exc` with the status of the shared error table, in OpenAI's error shape."""
    if isinstance(exc, _Refused):
        return JSONResponse(exc.body, status_code=exc.status)
    if isinstance(exc, _Unauthenticated):
        body = error_body("Missing or invalid API key: send it as 'Authorization: Bearer <key>'.",
                          "authentication_error", code="invalid_api_key")
        return JSONResponse(body, status_code=401, headers={"www-authenticate": 'Bearer error="invalid_token"'})
    if not isinstance(exc, GatewayError):
        log.error("chat completion failed unexpectedly", exc_info=exc)
    status, problem_body, headers = problem(exc, redact=guard.redactor.redact_text)
    kind = _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    param = exc.param if isinstance(exc, ChatRequestError) else ("model" if isinstance(exc, ModelNotFoundError) else None)
    code = problem_body["type"].rsplit(":", 1)[-1]
    if isinstance(exc, ModelNotFoundError):
        code = "model_not_found"
    body = error_body(problem_body["detail"], kind, param=param, code=code)
    if "call" in problem_body:
        body["error"]["gateway"] = problem_body["call"]
    return JSONResponse(body, status_code=status, headers=headers)


def chat_routes(live: LiveGateway, guard: Protections, pipeline: CallPipeline, *, max_body_bytes: int,
                security: TransportSecuritySettings | None = None) -> list[BaseRoute]:
    """The routes, for mounting into the gateway's Starlette app; `security` applies the MCP
    transports' Host/Origin checks (DNS-rebinding protection) here too."""
    api = _ChatApi(live, guard, pipeline, max_body_bytes, security)
    return [
        Route("/v1/chat/completions", endpoint=api, methods=["POST"]),
        Route("/v1/models", endpoint=api.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", endpoint=api.get_model, methods=["GET"]),
    ]


class _ChatApi:
    def __init__(self, live: LiveGateway, guard: Protections, pipeline: CallPipeline, max_body_bytes: int,
                 security: TransportSecuritySettings | None) -> None:
        self.live = live
        self.guard = guard
        self.pipeline = pipeline
        self.max_body_bytes = max_body_bytes
        self.checker = TransportSecurityMiddleware(security) if security is not None else None
        self.created = int(time.time())

    # -- models ----------------------------------------------------------------------------------

    async def _authorised(self, request: Request) -> Caller:
        """The caller, once the request passed the Host/Origin checks and (when on) authentication;
        a POST must carry JSON (what also keeps a web page from posting a form or text/plain)."""
        if self.checker is not None and (rejected := await self.checker.validate_request(request)) is not None:
            if rejected.status_code == 403:
                raise _Refused(403, "this Origin may not call the gateway (see --allow-origin)",
                               "permission_error", "origin_not_allowed")
            raise _Refused(421, "this Host header is not served here (see --allow-host)",
                           "invalid_request_error", "host_not_allowed")
        if request.method == "POST" and not is_json(request):
            raise _Refused(415, "send the request as JSON with Content-Type: application/json",
                           "invalid_request_error", "unsupported_media_type")
        if self.guard.verifier is not None and not isinstance(request.scope.get("user"), AuthenticatedUser):
            raise _Unauthenticated
        return self.guard.caller()

    def _model(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": self.created, "owned_by": "mcp-gateway"}

    async def list_models(self, request: Request) -> Response:
        try:
            caller = await self._authorised(request)
        except (_Unauthenticated, _Refused) as exc:
            return error_response(exc, self.guard)
        names = [name for name in self.live.gateway.router.routes if caller.scopes.allows_model(name)]
        return JSONResponse({"object": "list", "data": [self._model(name) for name in names]})

    async def get_model(self, request: Request) -> Response:
        name = request.path_params["model"]
        try:
            caller = await self._authorised(request)
            if not caller.scopes.allows_model(name):
                raise ModelNotFoundError(f"The model '{name}' does not exist or you do not have access to it.")
            self._route(name)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error response
            return error_response(exc, self.guard)
        return JSONResponse(self._model(name))

    def _route(self, name: str) -> Any:
        """The route `name` names (the pipeline has checked the caller's scopes for it)."""
        router = self.live.gateway.router
        route = router.resolve(name)
        if route is None:
            why = router.unavailable.get(name)
            detail = f" ({why})" if why else ""
            raise ModelNotFoundError(f"The model '{name}' does not exist or you do not have access to it{detail}.")
        return route

    # -- chat completions ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            caller = await self._authorised(request)
            call = parse_chat_request(await self._body(request))
            check_message_count(len(call.messages), self.live.gateway.limits.max_messages)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error response
            await error_response(exc, self.guard)(scope, receive, send)
            return
        if call.stream:
            await _Stream(self, caller, call).run(scope, receive, send)
            return
        try:
            routed = await until_disconnect(receive, lambda: self.run(caller, call, None))
        except ClientDisconnect:
            log.info("chat completion: the client went away; cancelled the call")
            await Response(status_code=CLIENT_CLOSED)(scope, receive, send)  # nobody reads it; middleware sees 499
            return
        except Exception as exc:  # noqa: BLE001
            await error_response(exc, self.guard)(scope, receive, send)
            return
        await JSONResponse(completion_body(routed))(scope, receive, send)

    async def _body(self, request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise RequestLimitError("max_body_bytes", f"request body is {int(declared):,} bytes; "
                                    f"the limit is {self.max_body_bytes:,}")
        raw = bytearray()
        async for piece in request.stream():
            raw += piece
            if len(raw) > self.max_body_bytes:
                raise RequestLimitError("max_body_bytes", f"request body is at least {len(raw):,} bytes; "
                                        f"the limit is {self.max_body_bytes:,}")
        try:
            return json.loads(raw)
        except ValueError:
            raise ChatRequestError("the request body is not valid JSON") from None

    async def run(self, caller: Caller, call: ChatCall, on_text: Callable[[str], Awaitable[None]] | None) -> Routed:
        """One call through the shared pipeline; its endpoint sends the request to the route.
        `on_text` streams the answer, except a fan-out's (its answers come whole, one choice each)."""
        schema = call.output_schema
        accept = _validator(schema) if schema is not None else None

        async def endpoint(piped: ToolCall) -> Routed:
            gateway = self.live.gateway
            route = self._route(call.model)
            loaded = gateway.loaded.chat_api if gateway.loaded is not None else None
            ttl = loaded.value.cache_ttl_s if loaded is not None else None
            if call.tools or any(m.tool_calls or m.role == "tool" for m in call.messages):
                ttl = None  # a tool's result is the caller's world: never answer it from the cache
            routed = await gateway.router.complete(
                route.name, call.messages, params=call.params, output_schema=schema,
                on_text=None if returns_every_answer(route) else piped.on_text,
                tools=call.tools, tool_choice=call.tool_choice, accept=accept, cache_ttl_s=ttl,
            )
            await gateway.router.remember(routed)  # a miss' answer, for the next identical request
            return routed

        arguments = {"messages": [m.content for m in call.messages]}  # what the size and token limits see
        piped = ToolCall(call.model, arguments, caller, method=CHAT, on_text=on_text)
        routed: Routed = await self.pipeline.run(piped, endpoint)
        return routed


def _validator(schema: Any) -> Callable[[Completion], bool]:
    """For fan-out `merge: first_valid`: an answer is valid when it is JSON matching `schema`."""
    validator = Draft202012Validator(schema)

    def accept(completion: Completion) -> bool:
        value = completion.structured
        if value is None:
            try:
                value = json.loads(completion.text)
            except ValueError:
                return False
        return validator.is_valid(value)

    return accept


class _Stream:
    """One streamed completion. Headers go out with the first piece of the answer, so an error
    before it is still an ordinary error response with its status; after it, an error is sent as
    a last `data: {"error": ...}` event. A client that goes away cancels the provider call."""

    def __init__(self, api: _ChatApi, caller: Caller, call: ChatCall) -> None:
        self.api = api
        self.caller = caller
        self.call = call
        self.id = new_id()
        self.created = int(time.time())
        self.started = False
        self.model = call.model

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.send = send
        routed: Routed | None = None
        error: Exception | None = None
        try:
            routed = await until_disconnect(receive, lambda: self.api.run(self.caller, self.call, self.on_text))
        except ClientDisconnect:
            log.info("chat completion stream: the client went away; cancelled the call")
            return
        except Exception as exc:  # noqa: BLE001
            error = exc
        if error is not None:
            response = error_response(error, self.api.guard)
            if not self.started:
                await response(scope, receive, send)
                return
            await self._write(b"data: " + bytes(response.body) + b"\n\n")
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
            return
        assert routed is not None
        await self.finish(routed)

    async def _start(self) -> None:
        if self.started:
            return
        self.started = True
        await self.send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no")]})
        await self._write(self._chunk([{"index": 0, "delta": {"role": "assistant", "content": ""},
                                        "finish_reason": None, "logprobs": None}]))

    async def _write(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None, *,
               with_usage: bool = False) -> bytes:
        return chunk(self.id, self.created, self.model, choices, usage,
                     with_usage=with_usage or self.call.include_usage)

    async def on_text(self, piece: str) -> None:
        if not piece:
            return
        await self._start()
        await self._write(self._chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None,
                                        "logprobs": None}]))

    async def finish(self, routed: Routed) -> None:
        """What was not streamed (tool calls; every choice of a fan-out), the finish reasons and usage."""
        await self._start()
        answers = completions_of(routed)
        fanned = len(answers) > 1 or bool(routed.answers and routed.route.merge == "all")
        for index, completion in enumerate(answers):
            delta: dict[str, Any] = {}
            if fanned:
                delta = {"role": "assistant", "content": completion.text}
            if completion.tool_calls:
                delta["tool_calls"] = [call_body(c, i) for i, c in enumerate(completion.tool_calls)]
            extra = {"model": completion.model} if fanned else {}
            if delta:
                await self._write(self._chunk([{"index": index, "delta": delta, "finish_reason": None,
                                                "logprobs": None, **extra}]))
            await self._write(self._chunk([{"index": index, "delta": {}, "finish_reason": finish_of(completion),
                                            "logprobs": None, **extra}]))
        if self.call.include_usage:
            body = completion_body(routed)
            await self._write(self._chunk([], body["usage"], with_usage=True))
        info = json.dumps({"gateway": gateway_info(routed)}, ensure_ascii=False)
        await self._write(f": {info}\n\n".encode())  # an SSE comment: the routing facts, for humans
        await self.send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

