"""A call in flight: `LiveGateway.call(deadline_s)` (one cancel scope for the call deadline and for
shutdown) behaves exactly like the two nested scopes it replaced, the in-flight scope around
the call deadline (then a context manager of its own), on both anyio backends."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from mcp_gateway import load_gateway
from mcp_gateway._errors import ShuttingDownError
from mcp_gateway.security.limits import CallDeadlineError
from mcp_gateway.server._live import LiveGateway

pytestmark = pytest.mark.anyio

CONFIG = """
format: mcp-gateway/1
providers: {offline: {kind: mock}}
models: {m: {provider: offline, model: mock-1}}
tools:
  - {name: t, description: A tool., model: m, messages: [{role: user, content: hi}]}
"""


async def _hang() -> None:
    await anyio.sleep_forever()


async def _fail() -> None:
    await anyio.lowlevel.checkpoint()
    raise ValueError("the body failed")


async def _convert() -> None:  # a body that turns its cancellation into another error
    try:
        await anyio.sleep_forever()
    except anyio.get_cancelled_exc_class():
        raise RuntimeError("cancelled, reported otherwise") from None


def _group(child_s: float) -> Any:
    """A task group whose child fails after `child_s` unless the deadline cancels it first."""

    async def body() -> None:
        async def child() -> None:
            await anyio.sleep(child_s)
            raise KeyError("child")

        async with anyio.create_task_group() as group:
            group.start_soon(child)
            await anyio.sleep_forever()

    return body


class _Reference:
    """The first implementation: a generator counting the call in flight with its own cancel scope
    (cancelled at shutdown), around the generator-based call deadline."""

    def __init__(self) -> None:
        self.scopes: set[anyio.CancelScope] = set()

    @asynccontextmanager
    async def call(self, seconds: float | None) -> AsyncIterator[None]:
        scope = anyio.CancelScope()
        self.scopes.add(scope)
        try:
            with scope:
                async with self._deadline(seconds):
                    yield
        finally:
            self.scopes.discard(scope)
        if scope.cancelled_caught:
            raise ShuttingDownError("The gateway is shutting down and cancelled this call at the end of its "
                                    "shutdown grace period; retry it")

    @asynccontextmanager
    async def _deadline(self, seconds: float | None) -> AsyncIterator[None]:
        if seconds is None:
            yield
            return
        with anyio.move_on_after(seconds) as scope:
            yield
        if scope.cancelled_caught:
            raise CallDeadlineError("call_deadline_s",
                                    f"the call did not finish within its deadline of {seconds:g} s", maximum=seconds)

    def cancel_calls(self) -> int:
        for scope in list(self.scopes):
            scope.cancel()
        return len(self.scopes)

    @property
    def in_flight(self) -> int:
        return len(self.scopes)


class _Live:
    """`LiveGateway.call` as an async context manager, like the reference."""

    def __init__(self, live: LiveGateway) -> None:
        self.live = live

    @asynccontextmanager
    async def call(self, seconds: float | None) -> AsyncIterator[None]:
        with self.live.call(seconds):
            yield

    def cancel_calls(self) -> int:
        return self.live.cancel_calls()

    @property
    def in_flight(self) -> int:
        return self.live.in_flight


def _shutdown(hang: bool = True) -> Callable[[Any], Any]:
    """A body during which shutdown cuts every call in flight (then hangs, or converts the cancellation)."""

    async def body(calls: Any) -> None:
        await anyio.lowlevel.checkpoint()
        assert calls.in_flight == 1
        assert calls.cancel_calls() == 1
        if hang:
            await _hang()
        else:
            await _convert()

    return body


def _plain(body: Callable[[], Any]) -> Callable[[Any], Any]:
    async def run(calls: Any) -> None:
        await body()

    return run


async def _outcome(calls: Any, seconds: float | None, body: Any, outer_s: float | None,
                   cancel_outer: bool) -> tuple[Any, ...]:
    """What a call does, seen from outside: the error (type, message, context and cause types, what
    an exception group holds), whether an enclosing scope caught a cancellation, and the count after."""
    error: BaseException | None = None
    with anyio.CancelScope(deadline=anyio.current_time() + outer_s if outer_s is not None else math.inf) as outer:
        if cancel_outer:
            outer.cancel()
        try:
            async with calls.call(seconds):
                await body(calls)
        except Exception as exc:  # noqa: BLE001 - compared below
            error = exc
    if error is None:
        return (None, outer.cancelled_caught, calls.in_flight)
    inner = error.exceptions if isinstance(error, BaseExceptionGroup) else ()
    return (type(error), str(error), type(error.__context__), type(error.__cause__), error.__suppress_context__,
            [type(e) for e in inner], outer.cancelled_caught, getattr(error, "maximum", None), calls.in_flight)


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])  # deadlines ~1000x apart: no race
@pytest.mark.parametrize(("seconds", "body", "outer_s", "cancel_outer"), [
    (60, _plain(anyio.lowlevel.checkpoint), None, False),  # finishes in time
    (None, _plain(anyio.lowlevel.checkpoint), None, False),  # no deadline
    (0.01, _plain(_hang), None, False),  # the deadline fires
    (0.01, _plain(_convert), None, False),  # fires, and the body reports it as another error
    (0.01, _plain(_group(60)), None, False),  # fires before the child fails
    (60, _plain(_group(0.01)), None, False),  # the child fails first
    (60, _plain(_fail), None, False),  # the body's own error
    (0.01, _plain(_fail), None, False),
    (60, _plain(_hang), 0.01, False),  # an enclosing deadline fires first: not the call's deadline
    (None, _plain(_hang), 0.01, False),
    (60, _plain(_hang), None, True),  # an enclosing scope is cancelled (a client's cancellation)
    (None, _plain(_hang), None, True),
    (60, _shutdown(), None, False),  # shutdown cuts the call short
    (None, _shutdown(), None, False),
    (0.01, _shutdown(), None, False),
    (60, _shutdown(hang=False), None, False),  # cut, and the body reports it as another error
    (60, _shutdown(), 0.01, False),  # cut inside an enclosing deadline
])
async def test_the_call_scope_behaves_like_the_two_it_replaced(tmp_path, seconds, body, outer_s, cancel_outer):
    (tmp_path / "g.yaml").write_text(CONFIG)
    live = LiveGateway(load_gateway(tmp_path / "g.yaml"))
    expected = await _outcome(_Reference(), seconds, body, outer_s, cancel_outer)
    assert await _outcome(_Live(live), seconds, body, outer_s, cancel_outer) == expected
