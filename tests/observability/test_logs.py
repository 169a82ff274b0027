"""JSON logs: one object per line with request id and extras, redacted; request-id middleware."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import anyio.lowlevel
import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mcp_gateway.observability.logs import (
    JsonFormatter,
    RequestIdMiddleware,
    TextFormatter,
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



# -- the formatters' per-second time text: the same lines as the standard library's way ------------

EDGES = [0.0, 0.0005, 0.0004999, 0.9995, 0.9999994, 0.9999995, 0.9999996, 1.0000005, 0.5, 59.9999999,
         1_700_000_000.0, 1_700_000_000.9999995, 1_700_000_000.0000005, 1_700_000_000.1234565, 1_735_689_599.9996,
         1_735_689_599.99999951, 4_102_444_799.999999, 951_868_799.9995]  # around year, leap day ends


def _reference_ts(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@settings(max_examples=500, deadline=None)
@given(times=st.lists(st.one_of(st.sampled_from(EDGES), st.floats(0, 4_102_444_799),
                                st.integers(0, 4_102_444_799).map(lambda s: s + 0.9999995)), min_size=1, max_size=20))
def test_json_timestamps_match_datetime(times: list[float]) -> None:
    formatter = JsonFormatter()
    for created in [*times, *sorted(times)]:  # in any order, and repeated (the cached second)
        assert formatter._timestamp(created) == _reference_ts(created)


def _record(created: float, msg: str = "m %s", args: tuple[object, ...] = ("x",), **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("mcp_gateway.calls", logging.INFO, __file__, 1, msg, args, None)
    record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
    record.__dict__.update(extra)
    return record


@settings(max_examples=300, deadline=None)
@given(times=st.lists(st.one_of(st.sampled_from(EDGES), st.floats(0, 4_102_444_799)), min_size=1, max_size=20),
       datefmt=st.sampled_from([None, "%H:%M:%S"]))
def test_text_formatter_writes_what_the_standard_formatter_writes(times: list[float], datefmt: str | None) -> None:
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    ours, standard = TextFormatter(fmt, datefmt), logging.Formatter(fmt, datefmt)
    for created in [*times, *sorted(times)]:
        assert ours.format(_record(created)) == standard.format(_record(created))
    try:
        raise ValueError("boom")
    except ValueError:
        failed = _record(times[0])
        failed.exc_info = sys.exc_info()
        again = _record(times[0])
        again.exc_info = failed.exc_info
    assert ours.format(failed) == standard.format(again)


def _reference_json(record: logging.LogRecord) -> str:
    """What JsonFormatter wrote before its time text and encoder were made once."""
    standard = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
    entry = {"ts": _reference_ts(record.created), "level": record.levelname, "logger": record.name,
             "message": record.getMessage(),
             "request_id": getattr(record, "request_id", None) or request_id_var.get()}
    for name, value in vars(record).items():
        if name not in standard and name not in ("ts", "level", "logger", "message", "request_id"):
            entry[name] = value
    return json.dumps(entry, ensure_ascii=False, default=str, separators=(",", ":"))


@settings(max_examples=300, deadline=None)
@given(created=st.floats(0, 4_102_444_799),
       extras=st.dictionaries(st.sampled_from(["tool", "ts", "level", "request_id", "gateway_call", "n"]),
                              st.recursive(st.one_of(st.text(), st.integers(), st.none(), st.floats(),
                                                     st.binary(max_size=4)),
                                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(), c, max_size=3),
                                           max_leaves=6), max_size=4))
def test_json_formatter_writes_what_it_always_wrote(created: float, extras: dict[str, object]) -> None:
    formatter = JsonFormatter()
    for _ in range(2):
        assert formatter.format(_record(created, "é %s\n", ("\"x\"",), **extras)) == \
            _reference_json(_record(created, "é %s\n", ("\"x\"",), **extras))
