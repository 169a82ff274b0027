"""JSON logs: one object per line with request id and extras, redacted; request-id middleware."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import anyio.lowlevel
import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mcp_gateway.observability.logs import (
    JsonFormatter,
    RequestIdMiddleware,
    json_log_handler,
    request_id,
    request_id_var,
)
from mcp_gateway.security.redact import Redactor

pytestmark = pytest.mark.anyio


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = json_log_handler(stream, redactor=Redactor(["hunter22"]), level=logging.DEBUG)
    logger = logging.getLogger("test_logs.json")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_request_id_and_extras(
        capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("no request yet")
    with request_id("req-1") as rid:
        assert rid == "req-1" and request_id_var.get() == "req-1"
        logger.info("tool %s finished\nin two lines", "summarize", extra={"tool": "summarize", "tokens": 12,
                                                                          "level": "clash"})
    assert request_id_var.get() is None
    first, second = lines(stream)
    assert first["request_id"] is None and first["message"] == "no request yet"
    assert second["request_id"] == "req-1" and second["logger"] == "test_logs.json"
    assert second["level"] == "INFO" and second["message"] == "tool summarize finished\nin two lines"
    assert second["tool"] == "summarize" and second["tokens"] == 12
    assert str(second["ts"]).endswith("Z") and "T" in str(second["ts"])
    assert len(stream.getvalue().splitlines()) == 2


def test_secrets_are_redacted_everywhere(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        raise ValueError("provider said: bad key hunter22")
    except ValueError:
        logger.exception("call with %s failed", "Authorization: Bearer hunter22",
                         extra={"headers": {"x-api-key": "k-123"}, "password": "pw"})
    text = stream.getvalue()
    assert "hunter22" not in text and "k-123" not in text and '"pw"' not in text
    (entry,) = lines(stream)
    assert "ValueError" in str(entry["exc"]) and entry["password"] == "[REDACTED]"


def test_formatter_survives_odd_extras() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    record.obj = object()
    assert json.loads(JsonFormatter().format(record))["obj"].startswith("<object")


async def test_request_id_middleware(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture

    async def handler(request: Request) -> PlainTextResponse:
        await anyio.lowlevel.checkpoint()
        logger.info("handling")
        return PlainTextResponse(request_id_var.get() or "")

    app = RequestIdMiddleware(Starlette(routes=[Route("/", handler)]))
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client:
        given = await client.get("/", headers={"X-Request-ID": "abc-123"})
        assert given.text == "abc-123" and given.headers["x-request-id"] == "abc-123"
        made = await client.get("/")
        assert len(made.text) == 16 and made.headers["x-request-id"] == made.text
        hostile = await client.get("/", headers={"X-Request-ID": "a b\"c" * 30})
        assert hostile.text != "a b\"c" * 30 and len(hostile.text) == 16
    assert [e["request_id"] for e in lines(stream)] == ["abc-123", made.text, hostile.text]

