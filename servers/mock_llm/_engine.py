"""The request pipeline shared by all formats: record, resolve faults, answer, watch for disconnects.

Every provider route is a :class:`ProviderEndpoint` (a raw ASGI app) so that the whole reply,
including the injected latency, runs under one task group together with a watcher on
``receive()``: when the client goes away the reply is cancelled at once and counted as
``disconnected`` instead of sleeping on (the property the gateway's cancellation tests rely on).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive, Scope, Send

from mcp_gateway.providers._fake import SchemaInstanceError

from ._content import build_completion
from ._faults import FaultPlan, FaultSyntaxError, parse_faults
from ._formats import StreamScript, WireFormat
from ._formats._base import broken_json, dumps
from ._state import MockState
from ._types import ErrorReply, RequestInvalid

FAULT_HEADER = "x-mock-fault"
FAULT_QUERY = "mock_fault"
KEY_HEADER = "x-mock-key"
MODEL_FAULT_PREFIX = "mock-fault-"

logger = logging.getLogger(__name__)


async def _sleep_ms(milliseconds: float) -> None:
    if milliseconds > 0:
        await anyio.sleep(milliseconds / 1000)


@dataclass(frozen=True, slots=True)
class JsonReply:
    """A whole JSON body sent after ``delay_ms``; ``cut`` sends only its first half, then drops the connection."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    delay_ms: float
    cut: bool = False

    async def play(self, send: Send) -> None:
        await _sleep_ms(self.delay_ms)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        if self.cut:
            logger.info("mock fault 'cut': dropping the connection mid-body")
            await send(
                {"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True}
            )
            return  # returning without completing the response makes the server close the connection
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


@dataclass(frozen=True, slots=True)
class StreamReply:
    """A streamed answer; applies the timing and stream-shape faults between frames."""

    script: StreamScript
    headers: tuple[tuple[bytes, bytes], ...]
    plan: FaultPlan

    async def play(self, send: Send) -> None:
        plan, script = self.plan, self.script
        await _sleep_ms(plan.latency_ms)
        headers = [
            (b"content-type", script.media_type.encode()),
            (b"cache-control", b"no-cache"),
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for frame in script.head:
            await _send_frame(send, frame)
        cut_after = None
        if plan.cut:
            cut_after = plan.cut_after if plan.cut_after is not None else max(1, len(script.content) // 2)
        await _sleep_ms(plan.first_token_delay_ms)
        for index, frame in enumerate(script.content):
            if cut_after is not None and index >= cut_after:
                logger.info("mock fault 'cut': dropping the connection after %d chunks", cut_after)
                return  # returning without the final body message makes the server drop the connection
            if index > 0:
                await _sleep_ms(plan.chunk_delay_ms)
            await _send_frame(send, frame)
            if index == 0:
                await self._after_first_chunk(send)
        if not script.content:
            await self._after_first_chunk(send)
        if cut_after is not None:
            logger.info("mock fault 'cut': dropping the connection before the end of the stream")
            return
        for frame in script.tail:
            await _send_frame(send, frame)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _after_first_chunk(self, send: Send) -> None:
        if self.plan.malformed:
            await _send_frame(send, self.script.malformed)
        if self.plan.stall_ms is not None:
            await _sleep_ms(self.plan.stall_ms)


async def _send_frame(send: Send, frame: bytes) -> None:
    await send({"type": "http.response.body", "body": frame, "more_body": True})


Reply = JsonReply | StreamReply


class ProviderEndpoint:
    """ASGI endpoint for one wire format."""

    def __init__(self, wire: WireFormat) -> None:
        self.wire = wire

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        state: MockState = request.app.state.mock_llm
        state.stats.in_flight += 1
        try:
            try:
                reply = await self._prepare(request, state)
            except ClientDisconnect:  # the client left while we were still reading its body
                disconnected = True
            else:
                disconnected = await _deliver(reply, receive, send)
        finally:
            state.stats.in_flight -= 1
        if disconnected:
            state.stats.disconnected += 1
        else:
            state.stats.completed += 1

    async def _prepare(self, request: Request, state: MockState) -> Reply:
        raw = await request.body()
        body: Any
        try:
            body = json.loads(raw) if raw else None
            body_ok = True
        except ValueError:
            body, body_ok = raw.decode("utf-8", "replace"), False
        state.record(
            wire=self.wire.name,
            method=request.method,
            path=request.url.path,
            query=request.query_params,
            headers=request.headers,
            body=body,
            peer=f"{request.client.host}:{request.client.port}" if request.client else None,
        )
        serial = state.next_serial()
        extra_headers = ((b"x-request-id", f"req_{serial}".encode()),)
        try:
            plan = self._resolve_plan(request, body, state)
        except FaultSyntaxError as exc:
            return self._error(
                ErrorReply(400, "invalid", f"invalid mock fault spec: {exc}"), FaultPlan(), extra_headers
            )
        if plan.error is not None:
            quota = plan.error == "quota"
            status = 429 if quota else int(plan.error)
            error = ErrorReply(
                status,
                "quota" if quota else "status",
                f"mock fault {plan.error}",
                retry_after_s=plan.retry_after_s,
            )
            return self._error(error, plan, extra_headers)
        if state.require_auth and not self.wire.api_key(request):
            return self._error(ErrorReply(401, "status", "missing API key"), plan, extra_headers)
        if not body_ok:
            return self._error(
                ErrorReply(400, "invalid", "request body is not valid JSON"), plan, extra_headers
            )
        try:
            chat = self.wire.parse(body, request)
            completion = build_completion(chat, plan, serial=serial, created=int(time.time()))
        except RequestInvalid as exc:
            return self._error(
                ErrorReply(exc.status, "invalid", exc.message, param=exc.param), plan, extra_headers
            )
        except SchemaInstanceError as exc:
            return self._error(
                ErrorReply(400, "invalid", f"unsupported response schema: {exc}"), plan, extra_headers
            )
        if chat.stream:
            script = self.wire.stream(completion, chat, end_marker=not plan.no_end)
            return StreamReply(script, extra_headers, plan)
        payload = self.wire.response(completion)
        text = broken_json(payload) if plan.malformed else dumps(payload)
        # Outside a stream, "stall" hangs before the answer and "cut" drops the connection mid-body.
        delay_ms = plan.latency_ms + (plan.stall_ms or 0.0)
        return JsonReply(200, text.encode(), extra_headers, delay_ms, cut=plan.cut)

    def _resolve_plan(self, request: Request, body: Any, state: MockState) -> FaultPlan:
        """Layer the fault sources (run default < model name < query < header), then apply ``fail_first``."""
        plan = state.default_faults
        model = self.wire.model_of(body, request)
        if model and model.startswith(MODEL_FAULT_PREFIX):
            plan = parse_faults(model[len(MODEL_FAULT_PREFIX) :], plan)
        plan = parse_faults(request.query_params.get(FAULT_QUERY), plan)
        plan = parse_faults(request.headers.get(FAULT_HEADER), plan)
        if plan.fail_first is not None:
            limit, failure = plan.fail_first
            if state.count_failure_attempt(request.headers.get(KEY_HEADER, "")) <= limit:
                plan = plan.overlay(failure)
        return plan

    def _error(
        self, error: ErrorReply, plan: FaultPlan, headers: tuple[tuple[bytes, bytes], ...]
    ) -> JsonReply:
        status, body = self.wire.error(error)
        if status == 429 and error.kind == "status":
            seconds = error.retry_after_s
            headers = (
                *headers,
                (b"retry-after", str(math.ceil(seconds)).encode()),
                (b"retry-after-ms", str(round(seconds * 1000)).encode()),
            )
        return JsonReply(status, dumps(body).encode(), headers, plan.latency_ms)


async def _deliver(reply: Reply, receive: Receive, send: Send) -> bool:
    """Play ``reply`` while watching for the client going away; return True if it did."""
    finished = False
    disconnected = False

    async def tracked_send(message: Message) -> None:
        nonlocal finished
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            finished = True  # after this the server reports http.disconnect for a normal end too
        await send(message)

    async with anyio.create_task_group() as group:

        async def watch() -> None:
            nonlocal disconnected
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    if not finished:
                        disconnected = True
                        group.cancel_scope.cancel()
                    return

        group.start_soon(watch)
        try:
            await reply.play(tracked_send)
        except OSError:
            disconnected = True
        finished = True
        group.cancel_scope.cancel()
    return disconnected
