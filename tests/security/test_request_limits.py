"""Request limits: each violation names the measured size and the limit."""

from __future__ import annotations

import json

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_gateway._errors import GatewayError
from mcp_gateway.security.limits import (
    BodySizeLimitMiddleware,
    RequestLimitError,
    _size_bound,
    check_arguments,
    check_message_count,
)


def test_argument_size_and_message_count() -> None:
    size = len('{"text":"é"}')
    check_arguments({"text": "é"}, size)  # at the limit: accepted
    with pytest.raises(RequestLimitError, match=rf"arguments are {size + 1} characters as JSON; the limit is {size}"):
        check_arguments({"text": "éx"}, size)  # one over
    with pytest.raises(RequestLimitError, match=r"arguments for tool 'summarize' are 1,011 characters as JSON; "
                                                r"the limit is 1,000") as info:
        check_arguments({"text": "x" * 1000}, 1000, tool="summarize")
    assert isinstance(info.value, GatewayError) and info.value.limit == "max_argument_chars"
    with pytest.raises(RequestLimitError, match=r"the request has 201 messages; the limit is 200"):
        check_message_count(201, 200)
    check_message_count(200, 200)


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


def _measured(arguments: object, maximum: int) -> str | None:
    """The general definition of the argument limit: encode, count, compare (the error it gives)."""
    size = len(json.dumps(arguments, ensure_ascii=False, separators=(",", ":"), default=str))
    return f"arguments for tool 't' are {size:,} characters as JSON; the limit is {maximum:,}" \
        if size > maximum else None


_text = st.text(alphabet=st.characters(codec=None, categories=None), max_size=40) | st.sampled_from(
    ["", '"', "\\", "\x00", "\x1f\x7f", "\u2028", "\ud800", "é" * 30, "🙂" * 20, '\\"\n\t\r\b\f'])
_scalar = (_text | st.none() | st.booleans() | st.floats() | st.sampled_from([float("nan"), -0.0, 5e-324, -1.7976931348623157e308])
           | st.integers() | st.sampled_from([2**64 - 1, -(2**64) + 1, 2**64, -(2**64), 10**30]))
_value = _scalar | st.lists(_text, max_size=70) | st.lists(_scalar, max_size=3) \
    | st.dictionaries(_text, _scalar, max_size=3) | st.tuples(_text) | st.sampled_from([{1, 2}, b"raw", object])
_arguments = st.dictionaries(_text, _value, max_size=70) | st.lists(_text, max_size=3) | _text


@settings(max_examples=1500, deadline=None)
@given(arguments=_arguments, slack=st.integers(-8, 8), at=st.sampled_from(["size", "bound"]))
def test_argument_limit_agrees_with_encoding_and_counting(arguments: object, slack: int, at: str) -> None:
    """`check_arguments` skips encoding when a cheap bound is under the limit; whatever the input
    (control characters, lone surrogates, huge numbers, odd types, many items), it refuses exactly
    what encoding and counting refuses, with the same message, around the exact size and the bound."""
    size = len(json.dumps(arguments, ensure_ascii=False, separators=(",", ":"), default=str))
    bound = _size_bound(arguments)
    if bound is not None:
        assert bound >= size
    maximum = max(1, (size if at == "size" or bound is None else bound) + slack)
    expected = _measured(arguments, maximum)
    if expected is None:
        check_arguments(arguments, maximum, tool="t")
    else:
        with pytest.raises(RequestLimitError) as info:
            check_arguments(arguments, maximum, tool="t")
        assert str(info.value) == expected and info.value.actual == size and info.value.maximum == maximum
