"""The unified API: OpenAI Chat Completions over the model aliases, mounted into the HTTP app.

`POST /v1/chat/completions` sends a request to the route its `model` names (an alias from
`models:`, or `provider/model` when `chat_api.direct_models` allows it), so an alias' fallback,
retries, breaker, hedging, fan-out, budgets and cost accounting apply; the answer comes back in
OpenAI's shape whichever provider gave it. `GET /v1/models` lists the aliases the caller may use.
A key needs a `models:` scope for an alias (`models:*`, `models:fast*`); without auth the local
user may use every alias. Each call is rate-limited, audited and metered like a tool call (method
`chat/completions`, target `model:<alias>`). Errors are OpenAI's `{"error": {...}}` with the
status the official SDK maps to its exception classes.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from jsonschema import Draft202012Validator
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .._errors import OutputError, ProviderError
from .._tokens import estimate_tokens
from ..accounting import BudgetExceededError
from ..providers import Completion
from ..routing import Routed
from ..security import RateLimitExceeded, RateLimitUnavailable, RequestLimitError
from ..security.limits import check_message_count
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
from ._protections import Caller, CallRecord, Protections

__all__ = ["chat_routes"]

log = logging.getLogger("mcp_gateway.chat_api")

METHOD = "chat/completions"
_JSON = [(b"content-type", b"application/json")]


class ApiError(Exception):
    """An error response in OpenAI's shape."""

    def __init__(self, status: int, message: str, kind: str, *, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(message, kind, param=param, code=code)
        self.headers = headers or {}

    def response(self) -> Response:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def to_api_error(exc: Exception) -> ApiError:
    """Each gateway error as the status and error type the OpenAI SDK knows."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ChatRequestError):
        return ApiError(400, exc.message, "invalid_request_error", param=exc.param)
    if isinstance(exc, RateLimitExceeded):
        wait = max(exc.retry_after, 0.0)
        return ApiError(429, f"Rate limit exceeded: {exc}", "rate_limit_error", code="rate_limit_exceeded",
                        headers={"retry-after": str(math.ceil(wait)), "retry-after-ms": str(round(wait * 1000))})
    if isinstance(exc, RateLimitUnavailable):
        return ApiError(503, f"Rate limits cannot be checked right now: {exc}", "server_error")
    if isinstance(exc, BudgetExceededError):
        return ApiError(429, str(exc), "insufficient_quota", code="insufficient_quota")
    if isinstance(exc, RequestLimitError):
        if exc.limit == "call_deadline_seconds":
            return ApiError(504, str(exc), "timeout_error", code="deadline_exceeded")
        return ApiError(413 if exc.limit == "max_body_bytes" else 400, str(exc), "invalid_request_error",
                        code=exc.limit)
    if isinstance(exc, ProviderError):
        if exc.kind == "timeout":
            return ApiError(504, str(exc), "timeout_error", code="provider_timeout")
        if exc.kind == "circuit_open":
            return ApiError(503, str(exc), "server_error", code="circuit_open",
                            headers={"retry-after": str(math.ceil(exc.retry_after or 1))})
        if exc.kind == "bad_request":
            return ApiError(400, str(exc), "invalid_request_error", code="provider_rejected")
        return ApiError(502, str(exc), "api_error", code=f"provider_{exc.kind}")
    if isinstance(exc, OutputError):
        return ApiError(502, str(exc), "api_error", code="invalid_output")
    log.exception("chat completion failed unexpectedly")
    return ApiError(500, "internal error (see the gateway's log)", "server_error")


def chat_routes(live: LiveGateway, guard: Protections, *, max_body_bytes: int) -> list[BaseRoute]:
    api = _ChatApi(live, guard, max_body_bytes)
    return [
        Route("/v1/chat/completions", endpoint=api, methods=["POST"]),
        Route("/v1/models", endpoint=api.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", endpoint=api.get_model, methods=["GET"]),
    ]


class _ChatApi:
    def __init__(self, live: LiveGateway, guard: Protections, max_body_bytes: int) -> None:
        self.live = live
        self.guard = guard
        self.max_body_bytes = max_body_bytes
        self.created = int(time.time())

    # -- models ----------------------------------------------------------------------------------

    def _authorised(self, request: Request) -> Caller:
        if self.guard.verifier is not None and not isinstance(request.scope.get("user"), AuthenticatedUser):
            raise ApiError(401, "Missing or invalid API key: send it as 'Authorization: Bearer <key>'.",
                           "invalid_request_error", code="invalid_api_key",
                           headers={"www-authenticate": 'Bearer error="invalid_token"'})
        return self.guard.caller()

    def _model(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": self.created, "owned_by": "mcp-gateway"}

    async def list_models(self, request: Request) -> Response:
        try:
            caller = self._authorised(request)
        except ApiError as exc:
            return exc.response()
        names = [name for name in self.live.gateway.router.routes if caller.scopes.allows_model(name)]
        return JSONResponse({"object": "list", "data": [self._model(name) for name in names]})

    async def get_model(self, request: Request) -> Response:
        try:
            caller = self._authorised(request)
            name = request.path_params["model"]
            self._route(caller, name)
        except ApiError as exc:
            return exc.response()
        return JSONResponse(self._model(name))

    def _route(self, caller: Caller, name: str) -> Any:
        router = self.live.gateway.router
        route = router.resolve(name) if caller.scopes.allows_model(name) else None
        if route is None:
            why = router.unavailable.get(name) if caller.scopes.allows_model(name) else None
            detail = f" ({why})" if why else ""
            raise ApiError(404, f"The model '{name}' does not exist or you do not have access to it{detail}.",
                           "invalid_request_error", param="model", code="model_not_found")
        return route

    # -- chat completions ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            caller = self._authorised(request)
            call = parse_chat_request(await self._body(request))
            route = self._route(caller, call.model)
            check_message_count(len(call.messages), self.live.gateway.limits.max_messages)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error response
            await to_api_error(exc).response()(scope, receive, send)
            return
        if call.stream:
            await _Stream(self, caller, call, route).run(scope, receive, send)
            return
        try:
            routed = await self.run(caller, call, route, None)
        except Exception as exc:  # noqa: BLE001
            await to_api_error(exc).response()(scope, receive, send)
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

    async def run(self, caller: Caller, call: ChatCall, route: Any,
                  on_text: Callable[[str], Awaitable[None]] | None) -> Routed:
        """One call through the protections: rate limits and deadline, then metrics and audit."""
        target = f"model:{route.name}"
        estimate = sum(estimate_tokens(m.content) for m in call.messages) if self.guard.limiter is not None else 0
        schema = call.output_schema
        accept = _validator(schema) if schema is not None else None
        async with self.guard.tool_call(caller, target, estimated_tokens=estimate, method=METHOD) as record:
            with self.live.call():
                routed = await self.live.gateway.router.complete(
                    route.name, call.messages, params=call.params, output_schema=schema, on_text=on_text,
                    tools=call.tools, tool_choice=call.tool_choice, accept=accept,
                )
            self._record(record, target, routed)
        return routed

    def _record(self, record: CallRecord, target: str, routed: Routed) -> None:
        usage = routed.completion.usage
        if routed.answers:
            usage_in = sum(a.usage.input_tokens for a in routed.attempts if a.usage is not None)
            usage_out = sum(a.usage.output_tokens for a in routed.attempts if a.usage is not None)
        else:
            usage_in, usage_out = usage.input_tokens, usage.output_tokens
        record.input_tokens, record.output_tokens = usage_in, usage_out
        record.cost_usd = float(routed.cost_usd) if routed.cost_usd is not None else None
        metrics = self.guard.metrics
        for attempt in routed.attempts:
            metrics.provider_call(attempt.provider, attempt.model, attempt.duration_ms / 1000,
                                  error_type=None if attempt.outcome in ("ok", "lost") else attempt.outcome)
        metrics.usage(tool=target, route=routed.route.name, provider=routed.target.provider.name,
                      model=routed.completion.model, input_tokens=usage_in, output_tokens=usage_out,
                      cached_tokens=usage.cache_read_tokens, cost_usd=record.cost_usd)


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

    def __init__(self, api: _ChatApi, caller: Caller, call: ChatCall, route: Any) -> None:
        self.api = api
        self.caller = caller
        self.call = call
        self.route = route
        self.id = new_id()
        self.created = int(time.time())
        self.started = False
        self.model = route.model

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.send = send
        routed: Routed | None = None
        error: Exception | None = None
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                log.info("chat completion stream: the client went away; cancelling the call")
                group.cancel_scope.cancel()

            group.start_soon(watch)
            route = self.route
            fans_out = route.strategy == "fanout" and route.merge == "all" and len(route.targets) > 1
            try:  # a fan-out's answers are sent whole at the end, one choice each
                routed = await self.api.run(self.caller, self.call, route, None if fans_out else self.on_text)
            except Exception as exc:  # noqa: BLE001
                error = exc
            group.cancel_scope.cancel()
        if routed is None and error is None:
            return  # cancelled: the client is gone
        if error is not None:
            api_error = to_api_error(error)
            if not self.started:
                await api_error.response()(scope, receive, send)
                return
            await self._write(b"data: " + json.dumps(api_error.body).encode() + b"\n\n")
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
        self.model = routed.completion.model
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

