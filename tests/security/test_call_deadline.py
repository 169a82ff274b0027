"""The call deadline: `call_deadline` (a class, one cancel scope) behaves exactly like the
generator-based context manager it replaced, on both anyio backends."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from mcp_gateway.security.limits import CallDeadlineError, call_deadline


@asynccontextmanager
async def _reference_deadline(seconds: float | None) -> AsyncIterator[None]:
    """The first (generator-based) call_deadline: the class must behave exactly like it."""
    if seconds is None:
        yield
        return
    with anyio.move_on_after(seconds) as scope:
        yield
    if scope.cancelled_caught:
        raise CallDeadlineError("call_deadline_s", f"the call did not finish within its deadline of {seconds:g} s",
                                maximum=seconds)


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


async def _outcome(deadline: Any, seconds: float | None, body: Any, outer_s: float | None,
                   cancel_outer: bool) -> tuple[Any, ...]:
    """What a deadline block does, seen from outside: the error (type, message, context type) and
    whether an enclosing scope caught a cancellation."""
    error: BaseException | None = None
    with anyio.CancelScope(deadline=anyio.current_time() + outer_s if outer_s is not None else math.inf) as outer:
        if cancel_outer:
            outer.cancel()
        try:
            async with deadline(seconds):
                await body()
        except Exception as exc:  # noqa: BLE001 - compared below
            error = exc
    if error is None:
        return (None, outer.cancelled_caught)
    inner = error.exceptions if isinstance(error, BaseExceptionGroup) else ()
    return (type(error), str(error), type(error.__context__), type(error.__cause__), error.__suppress_context__,
            [type(e) for e in inner], outer.cancelled_caught, getattr(error, "maximum", None))


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])  # deadlines ~1000x apart: no race
@pytest.mark.parametrize(("seconds", "body", "outer_s", "cancel_outer"), [
    (60, anyio.lowlevel.checkpoint, None, False),  # finishes in time
    (None, anyio.lowlevel.checkpoint, None, False),  # no deadline
    (0.01, _hang, None, False),  # the deadline fires
    (0.01, _convert, None, False),  # fires, and the body reports it as another error
    (0.01, _group(60), None, False),  # fires before the child fails
    (60, _group(0.01), None, False),  # the child fails first
    (60, _fail, None, False),  # the body's own error
    (0.01, _fail, None, False),
    (60, _hang, 0.01, False),  # an enclosing deadline fires first: not the call's deadline
    (None, _hang, 0.01, False),
    (60, _hang, None, True),  # an enclosing scope is cancelled (shutdown)
    (None, _hang, None, True),
])
async def test_the_deadline_class_behaves_like_the_generator(seconds, body, outer_s, cancel_outer) -> None:
    expected = await _outcome(_reference_deadline, seconds, body, outer_s, cancel_outer)
    assert await _outcome(call_deadline, seconds, body, outer_s, cancel_outer) == expected
