"""One call path for every surface: caller -> scopes -> limits -> rate limit -> session -> gateway
-> accounting, with metrics, audit and a trace span around it all.

MCP handlers, the REST API and any later surface build a `ToolCall` and run it here, so a
protection is written once and a new surface cannot forget one. Each step has the shape
`step(call, call_next)` (the shape of the SDK's `Server.middleware`); the SDK's own middleware is
not used because it wraps JSON-RPC requests, and REST calls never become one.

A step raises a GatewayError to refuse; the surface turns it into its own answer through the one
table in `_boundary`. A surface with calls of its own kind runs them through the same steps with
`run(call, endpoint)`; `self.steps` is a plain sequence, so a step is added (or replaced) in one
place for every surface (assigning it rebuilds the chain the calls run through).

The chain is built for the configuration it serves: a step that cannot act under it (rate limiting
with no limiter, sessions with no session store) is left out, and the chain is rebuilt when that
changes (a reload swaps the gateway; protections may be replaced), so every call still passes every
protection that applies to it, on every surface.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._errors import ModelNotFoundError, ToolNotFoundError
from .._gateway import ToolAnswer
from .._tokens import estimate_tokens
from ..observability.tracing import GatewayTracer
from ..catalog import PromptTool
from ..providers import OnText
from ..routing import Routed
from ..security.limits import check_arguments
from ..sessions import SessionRecord
from ._live import LiveGateway
from ._protections import Caller, CallRecord, Protections

__all__ = ["CHAT", "TOOLS", "CallPipeline", "Endpoint", "Step", "ToolCall", "record_answer"]

TOOLS = "tools/call"
CHAT = "chat/completions"

# What `json.dumps(value, default=str)` builds on every call, built once (it keeps no state between calls).
_AS_JSON = json.JSONEncoder(default=str)

OwnSession = Callable[[], Awaitable[SessionRecord | None]]
Next = Callable[["ToolCall"], Awaitable[Any]]
Step = Callable[["ToolCall", Next], Awaitable[Any]]
Endpoint = Callable[["ToolCall"], Awaitable[Any]]


@dataclass(slots=True)
class ToolCall:
    """One call as every surface describes it; steps fill in `record` and `session`.

    `method` says what is called: a tool (`tools/call`, the default), or a model alias through
    the OpenAI-format API (`chat/completions`: `name` is the alias, `arguments` the messages)."""

    name: str  # as asked for (summarize, summarize.v1, summarize.staging); `authorize` makes it the tool's name
    arguments: dict[str, Any]
    caller: Caller
    version: str | None = None  # a pinned version; None: the served one
    method: str = TOOLS  # what metrics, the audit log and the trace span call it
    session_handle: str | None = None
    # A surface's own session when none is named (MCP: the connection's, for context tools).
    own_session: OwnSession | None = None
    on_text: OnText | None = None
    record: CallRecord = field(default_factory=CallRecord)
    session: SessionRecord | None = None
    requested: str | None = None  # the name as asked for, once `authorize` set `name` to the tool's name
    tool: PromptTool | None = None  # the tool version that answers, set by `authorize`
    endpoint: Endpoint | None = None  # what answers at the end of the chain (None: the gateway); set by `run`

    @property
    def target(self) -> str:
        """The name metrics, audit and per-tool rate limits know the call by."""
        return self.name if self.method == TOOLS else f"model:{self.name}"


class _Link:
    """One step bound to the rest of the chain: calling it returns the step's coroutine, with no
    coroutine of its own in between."""

    __slots__ = ("step", "rest")

    def __init__(self, step: Step, rest: Next) -> None:
        self.step = step
        self.rest = rest

    def __call__(self, call: ToolCall) -> Awaitable[Any]:
        return self.step(call, self.rest)


def _chain(steps: Sequence[Step], endpoint: Endpoint) -> Next:
    chain: Next = endpoint
    for step in reversed(steps):
        chain = _Link(step, chain)
    return chain


def record_answer(guard: Protections, record: CallRecord, tool: str, answer: ToolAnswer | Routed) -> None:
    """Tokens and cost of a finished call, for rate-limit settlement, metrics and the audit log
    (a fan-out's tokens are every target's)."""
    routed = answer.routed if isinstance(answer, ToolAnswer) else answer
    usage = routed.completion.usage
    record.input_tokens, record.output_tokens = usage.input_tokens, usage.output_tokens
    if routed.answers:
        record.input_tokens = sum(a.usage.input_tokens for a in routed.attempts if a.usage is not None)
        record.output_tokens = sum(a.usage.output_tokens for a in routed.attempts if a.usage is not None)
    record.cost_usd = float(routed.cost_usd) if routed.cost_usd is not None else None
    if routed.cache == "hit":
        return  # no provider was called
    for attempt in routed.attempts:
        guard.metrics.provider_call(attempt.provider, attempt.model, attempt.duration_ms / 1000,
                                    error_type=None if attempt.outcome in ("ok", "lost") else attempt.outcome)
    guard.metrics.usage(tool=tool, route=routed.route.name, provider=routed.target.provider.name,
                        model=routed.completion.model, input_tokens=record.input_tokens,
                        output_tokens=record.output_tokens, cached_tokens=usage.cache_read_tokens,
                        cost_usd=record.cost_usd)


class CallPipeline:
    """The steps every tool call runs through, ending in `Gateway.call_tool` (or a given endpoint)."""

    def __init__(self, live: LiveGateway, guard: Protections, *, tracer: GatewayTracer | None = None) -> None:
        self.live = live
        self.guard = guard
        self.tracer = tracer or GatewayTracer()
        self.steps = (
            self.audit, self.trace, self.authorize, self.check_limits, self.rate_limit, self.deadline,
            self.open_session, self.account,
        )

    @property
    def steps(self) -> Sequence[Step]:
        """Every step, outermost first (those that cannot act under the configuration included)."""
        return self._steps

    @steps.setter
    def steps(self, steps: Sequence[Step]) -> None:
        self._steps = tuple(steps)
        self._build(self._conditions())

    @property
    def active_steps(self) -> Sequence[Step]:
        """The steps a call runs through under the current configuration."""
        self._current()
        return self._active

    def run(self, call: ToolCall, endpoint: Endpoint | None = None) -> Awaitable[Any]:
        """Run `call` through every step that applies (await the result); raises the GatewayError of
        the step that refused it. `endpoint` answers instead of the gateway (a surface's own calls)."""
        call.endpoint = endpoint
        return self._current()(call)

    def _current(self) -> Next:
        """The chain for the configuration now: rebuilt when a reload or new protections changed it."""
        conditions = self._conditions()
        if conditions != self._built_for:
            self._build(conditions)
        return self._chain

    def _conditions(self) -> tuple[bool, bool]:
        """What decides which steps can act: whether a rate limiter and a session store are
        configured. Read on every call (two attribute reads), so nothing can go stale."""
        return self.guard.limiter is not None, self.live.gateway.sessions is not None

    def _build(self, conditions: tuple[bool, bool]) -> None:
        limiter, sessions = conditions
        applies = {self.rate_limit: limiter, self.open_session: sessions}
        self._active = tuple(step for step in self._steps if applies.get(step, True))
        self._chain = _chain(self._active, self._endpoint)  # built once per configuration: no per-call closures
        self._built_for = conditions

    def _endpoint(self, call: ToolCall) -> Awaitable[Any]:
        return (call.endpoint or self.call_gateway)(call)

    # -- the steps, outermost first -----------------------------------------------------------------

    async def audit(self, call: ToolCall, call_next: Next) -> Any:
        """Metrics and an audit record for every call, refused ones included."""
        started = time.perf_counter()
        record = call.record
        try:
            return await call_next(call)
        except BaseException as exc:
            if record.outcome == "ok":
                record.outcome, record.error_kind = "error", type(exc).__name__
            if (routed := getattr(exc, "call_meta", None)) is not None:  # a failure after routing says why
                record.call = routed
                usage = routed.get("usage") or {}
                record.input_tokens = usage.get("input_tokens", 0)
                record.output_tokens = usage.get("output_tokens", 0)
                record.cost_usd = routed.get("cost_usd")
            raise
        finally:
            self.guard.record_call(call.caller, call.method, call.target, record, time.perf_counter() - started)

    async def trace(self, call: ToolCall, call_next: Next) -> Any:
        if not self.tracer.active():  # no tracer provider: the span would record nothing
            return await call_next(call)
        with self.tracer.tool_call(call.target, method=call.method) as span:
            answer = await call_next(call)
            if isinstance(answer, ToolAnswer):
                GatewayTracer.record_usage(span, input_tokens=call.record.input_tokens,
                                           output_tokens=call.record.output_tokens,
                                           response_model=answer.completion.model)
            return answer

    async def authorize(self, call: ToolCall, call_next: Next) -> Any:
        """The caller's scopes, and which tool version answers: the one catalog lookup
        (ToolNotFoundError / ToolRetiredError if none)."""
        scopes = call.caller.scopes
        if call.method == TOOLS:
            registry = self.live.gateway.catalog.tools
            asked = call.requested or call.name
            # Scopes, rate limits, metrics and the audit log name the tool, whatever version was asked for.
            base = registry.base_name(call.name)
            if base is not None and base != call.name:
                call.requested, call.name = call.name, base
            if not scopes.allows_tool(call.name):
                # Out-of-scope tools are absent from this caller's list; calling one is like calling
                # a tool that does not exist.
                call.record.outcome, call.record.error_kind = "error", "out_of_scope"
                raise ToolNotFoundError(f"Unknown tool: '{asked}'")
            # Only catalog tools have versions: a surface's own endpoint (MCP's built-in session tools)
            # passes through, and the default endpoint refuses the unknown.
            if base is not None:
                tool = registry.resolve(asked, version=call.version)
                call.tool = tool
                call.record.version, call.record.status = tool.config.version, tool.config.status
                if tool.config.status == "deprecated":
                    self.guard.metrics.deprecated_call(tool.name, tool.config.version, call.caller.principal)
        elif call.method == CHAT and not scopes.allows_model(call.name):
            call.record.outcome, call.record.error_kind = "error", "out_of_scope"
            raise ModelNotFoundError(f"The model '{call.name}' does not exist or you do not have access to it.")
        return await call_next(call)

    async def check_limits(self, call: ToolCall, call_next: Next) -> Any:
        check_arguments(call.arguments, self.live.gateway.limits.max_argument_chars, tool=call.target)
        return await call_next(call)

    async def rate_limit(self, call: ToolCall, call_next: Next) -> Any:
        guard = self.guard
        if guard.limiter is None:
            return await call_next(call)
        estimate = estimate_tokens(_AS_JSON.encode(call.arguments))
        async with guard.admit(call.caller, call.target, call.record, estimated_tokens=estimate) as permit:
            answer = await call_next(call)
            await permit.settle(call.record.input_tokens + call.record.output_tokens)
            return answer

    async def deadline(self, call: ToolCall, call_next: Next) -> Any:
        """The call deadline (CallDeadlineError), and the call counted as in flight so that shutdown
        waits for it or cuts it short (ShuttingDownError): one cancel scope for both."""
        with self.live.call(self.guard.call_deadline_s):
            return await call_next(call)

    async def open_session(self, call: ToolCall, call_next: Next) -> Any:
        gateway = self.live.gateway
        if gateway.sessions is not None:
            if call.session_handle is not None:
                call.session = await gateway.sessions.resolve(call.session_handle, call.caller.principal)
            elif call.own_session is not None and call.tool is not None and call.tool.config.context is not None:
                call.session = await call.own_session()
            call.record.session_id = call.session.id if call.session is not None else None
        return await call_next(call)

    async def account(self, call: ToolCall, call_next: Next) -> Any:
        """Tokens, cost and provider metrics of the answer; time to the first piece of text."""
        started = 0.0
        first_piece_at: float | None = None
        if call.on_text is not None:
            started = time.perf_counter()
            deliver = call.on_text

            async def timed(piece: str) -> None:
                nonlocal first_piece_at
                if first_piece_at is None:
                    first_piece_at = time.perf_counter()
                await deliver(piece)

            call.on_text = timed
        answer = await call_next(call)
        if isinstance(answer, (ToolAnswer, Routed)):
            record_answer(self.guard, call.record, call.target, answer)
            if first_piece_at is not None:
                routed = answer.routed if isinstance(answer, ToolAnswer) else answer
                self.guard.metrics.first_chunk(routed.target.provider.name, routed.completion.model,
                                               first_piece_at - started)
        return answer

    # -- the default endpoint -----------------------------------------------------------------------

    async def call_gateway(self, call: ToolCall) -> ToolAnswer:
        if call.tool is None:  # not a catalog tool: the lookup says why
            call.tool = self.live.gateway.catalog.tools.resolve(call.requested or call.name, version=call.version)
        return await self.live.gateway.call_version(call.tool, call.arguments, on_text=call.on_text,
                                                    session=call.session, caller=call.caller.principal)
