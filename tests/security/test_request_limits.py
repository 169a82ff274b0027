"""Request limits: each violation names the measured size and the limit."""

from __future__ import annotations

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
