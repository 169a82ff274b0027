"""Request limits: each violation names the measured size and the limit."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_gateway._errors import GatewayError
from mcp_gateway.security.limits import (
    BodySizeLimitMiddleware,
    CallDeadlineError,
    RequestLimitError,
    call_deadline,
    check_arguments,
    check_message_count,
)


def test_argument_size_and_message_count() -> None:
    assert check_arguments({"text": "é"}, 100) == len('{"text":"é"}')
    with pytest.raises(RequestLimitError, match=r"arguments for tool 'summarize' are 1,011 characters as JSON; "
                                                r"the limit is 1,000") as info:
        check_arguments({"text": "x" * 1000}, 1000, tool="summarize")
    assert isinstance(info.value, GatewayError) and info.value.limit == "max_argument_chars"
    with pytest.raises(RequestLimitError, match=r"the request has 201 messages; the limit is 200"):
        check_message_count(201, 200)
    check_message_count(200, 200)


@pytest.mark.anyio
async def test_deadline() -> None:
    async def slow() -> str:
        await anyio.sleep_forever()
        return "late"

    async def fast() -> str:
        return "ok"

    async with call_deadline(60):
        assert await fast() == "ok"
    with pytest.raises(CallDeadlineError, match=r"the call did not finish within its deadline of 0.05 s"):
        async with call_deadline(0.05):
            await slow()
    async with call_deadline(None):
        await anyio.lowlevel.checkpoint()


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


@pytest.mark.anyio
async def test_body_size_middleware() -> None:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"size": len(await request.body())})

    app = BodySizeLimitMiddleware(Starlette(routes=[Route("/", echo, methods=["POST"])]), max_bytes=100)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.post("/", content=b"x" * 100)).json() == {"size": 100}
        declared = await client.post("/", content=b"x" * 101)
        assert declared.status_code == 413
        assert declared.json()["detail"] == "request body is 101 bytes; the limit is 100"

        async def chunks():  # no Content-Length: counted while streaming
            for _ in range(5):
                yield b"y" * 30

        streamed = await client.post("/", content=chunks())
        assert streamed.status_code == 413
        assert "at least 120 bytes; the limit is 100" in streamed.json()["detail"]
