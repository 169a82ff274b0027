"""Audit log: JSONL and SQLite sinks, redaction, append-only, flushing on close, bounded queue."""

from __future__ import annotations

import json
import sqlite3
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from mcp_gateway.observability.audit import AuditEvent, AuditLog, JsonlAuditSink, SqliteAuditSink
from mcp_gateway.security.redact import Redactor

pytestmark = pytest.mark.anyio


def event(i: int = 0, **kw: object) -> AuditEvent:
    base: dict[str, object] = {"principal": "key:abc", "method": "tools/call", "target": "summarize",
                               "duration_ms": 12.5, "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.001,
                               "request_id": f"r{i}", "ts": 1_700_000_000 + i}
    base.update(kw)
    return AuditEvent(**base)  # type: ignore[arg-type]


async def test_jsonl_sink_appends_redacted_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "audit.jsonl"
    async with AuditLog(JsonlAuditSink(path, fsync=True), redactor=Redactor(["hunter22"])) as log:
        for i in range(50):
            log.record_nowait(event(i))
        await log.record(event(99, outcome="error", error_kind="provider",
                               target="note with hunter22 and Bearer abc.def"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 51 and [r["request_id"] for r in rows[:3]] == ["r0", "r1", "r2"]
    assert rows[-1]["outcome"] == "error" and rows[-1]["error_kind"] == "provider"
    assert "hunter22" not in path.read_text() and "abc.def" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # a second log appends, never truncates
    async with AuditLog(JsonlAuditSink(path)) as log:
        log.record_nowait(event(100))
    assert len(path.read_text().splitlines()) == 52


async def test_sqlite_sink_is_append_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    sink = SqliteAuditSink(path)
    async with AuditLog(sink) as log:
        for i in range(20):
            log.record_nowait(event(i, principal="key:a" if i % 2 else "key:b"))
    reader = SqliteAuditSink(path)
    try:
        rows = reader.read()
        assert len(rows) == 20 and rows[0]["request_id"] == "r0" and rows[0]["input_tokens"] == 10
        assert len(reader.read(principal="key:a")) == 10
        assert len(reader.read(since=1_700_000_015)) == 5
    finally:
        reader.close()
    raw = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("UPDATE audit_events SET principal = 'someone else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("DELETE FROM audit_events")
        assert raw.execute("SELECT count(*) FROM audit_events").fetchone() == (20,)
    finally:
        raw.close()
    assert not hasattr(SqliteAuditSink, "update") and not hasattr(SqliteAuditSink, "delete")


async def test_sqlite_sink_keeps_a_failed_calls_routing_facts_and_upgrades_an_older_log(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)  # a log written before the `call` column existed
    old.execute("CREATE TABLE audit_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, "
                "principal TEXT, method TEXT NOT NULL, target TEXT, outcome TEXT NOT NULL, error_kind TEXT, "
                "duration_ms REAL, input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL, "
                "request_id TEXT, session_id TEXT)")
    old.execute("INSERT INTO audit_events (ts, principal, method, outcome) VALUES (1, 'p', 'tools/call', 'ok')")
    old.commit()
    old.close()
    call = {"route": "r", "attempts": 2, "other_attempts": [{"target": "a/m", "outcome": "server",
                                                             "error": "HTTP 503 with hunter22"}]}
    async with AuditLog(SqliteAuditSink(path), redactor=Redactor(["hunter22"])) as log:
        await log.record(event(1, outcome="error", error_kind="RouteError", call=call))
    reader = SqliteAuditSink(path)
    try:
        rows = reader.read()
    finally:
        reader.close()
    assert rows[0]["call"] is None and rows[1]["call"]["route"] == "r"
    assert rows[1]["call"]["other_attempts"][0]["error"] == "HTTP 503 with [REDACTED]"


class SlowSink:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.closed = False

    def write_batch(self, events: Sequence[dict[str, Any]]) -> None:
        import time
        time.sleep(0.02)
        self.rows.extend(events)

    def close(self) -> None:
        self.closed = True


async def test_aclose_flushes_everything_queued() -> None:
    sink = SlowSink()
    log = AuditLog(sink, max_batch=7)
    async with log:
        for i in range(100):
            assert log.record_nowait(event(i))
    assert len(sink.rows) == 100 and sink.closed and log.written == 100
    assert [r["request_id"] for r in sink.rows] == [f"r{i}" for i in range(100)]
    assert not log.record_nowait(event())  # closed: refused and counted
    assert log.dropped == 1
    await log.aclose()  # idempotent


async def test_full_queue_drops_nowait_but_record_waits() -> None:
    sink = SlowSink()
    log = AuditLog(sink, max_queue=5)
    for i in range(8):  # not started yet: nothing drains
        log.record_nowait(event(i))
    assert log.dropped == 3
    async with log:
        with anyio.fail_after(30):
            for i in range(20):
                await log.record(event(i))  # waits for room, never drops
    assert len(sink.rows) == 25 and log.dropped == 3


async def test_sink_failure_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(SlowSink):
        def write_batch(self, events: Sequence[dict[str, Any]]) -> None:
            raise OSError("disk full")

    async with AuditLog(Broken()) as log:
        log.record_nowait(event())
    assert log.dropped == 1 and "audit sink failed" in caplog.text


class CountingSink(SlowSink):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.written = anyio.Event()

    def write_batch(self, events: Sequence[dict[str, Any]]) -> None:
        self.rows.extend(events)
        self.batches.append(len(events))
        self.written.set()


async def test_events_of_one_window_are_written_as_one_batch_in_order() -> None:
    sink = CountingSink()
    async with AuditLog(sink, max_batch=20, batch_window_s=3600) as log:  # only a full batch or closing write
        for i in range(20):
            assert log.record_nowait(event(i))  # the 20th fills the batch: written before the window ends
            await anyio.lowlevel.checkpoint()  # the drain runs between events
        with anyio.fail_after(30):
            await sink.written.wait()
        assert sink.batches == [20]
    assert [r["request_id"] for r in sink.rows] == [f"r{i}" for i in range(20)]
    assert log.written == 20 and log.dropped == 0


async def test_a_full_batch_is_written_before_the_window_ends() -> None:
    sink = CountingSink()
    async with AuditLog(sink, max_batch=5, batch_window_s=3600) as log:
        for i in range(12):
            log.record_nowait(event(i))
        with anyio.fail_after(30):
            while sum(sink.batches) < 10:  # two full batches; the last 2 wait for the window or close
                sink.written = anyio.Event()
                await sink.written.wait()
        assert sink.batches == [5, 5]
    assert sink.batches == [5, 5, 2]
    assert [r["request_id"] for r in sink.rows] == [f"r{i}" for i in range(12)]


@pytest.mark.parametrize("fields", [None, ["target", "detail"]])
def test_written_event_is_the_redacted_dict(fields: list[str] | None) -> None:
    """The audit log's redaction of an event equals redacting the whole `to_dict()`."""
    redactor = Redactor(["hunter22secret"], **({"fields": fields} if fields else {}))
    log = AuditLog(SlowSink(), redactor=redactor)
    events = [
        event(1),
        event(2, principal="key:hunter22secret", target="Authorization: Bearer abc", outcome="error",
              error_kind="provider", session_id="sk-abcdefghijkl", detail='{"password": "p"}',
              call={"route": "r", "attempts": [{"error": "HTTP 401 api_key=zzz hunter22secret"}],
                    "token": 5}, version="1", status="published"),
        event(3, request_id=None, cost_usd=None, input_tokens=True),
    ]
    for e in events:
        assert log._redacted(e) == redactor.redact(e.to_dict())
    assert "hunter22secret" not in json.dumps([log._redacted(e) for e in events])


@pytest.mark.parametrize("fields", [None, ["target", "detail", "version"]])
def test_an_event_is_written_as_full_redaction_would_write_it(fields: list[str] | None) -> None:
    """The writer redacts fixed column names once and each distinct text once per batch: for any
    values (secrets, odd types, NaN, huge or negative numbers) the columns must be what redacting
    the whole event gives, in the same order."""
    import random

    redactor = Redactor(["hunter22secret"], **({"fields": fields} if fields else {}))
    log = AuditLog(SlowSink(), redactor=redactor, max_queue=10**6)
    rng = random.Random(7)
    texts = [None, "", "key:abc", "tools/call", "hunter22secret", "Authorization: Bearer abc.def", "été ✓",
             "sk-abcdefghijklmnopqrstuv", "x" * 500, "a\nb\"c"]
    numbers = [None, 0, 1, -5, 10**20, 0.1, float("nan"), float("inf"), True]
    calls = [None, {}, {"route": "r", "attempts": [{"error": "HTTP 401 api_key=zzz hunter22secret"}], "token": 5},
             {"usage": {"input_tokens": 3}, "cost_usd": 0.5}]
    seconds = [0.0, 0.0012, 1.23456789, 1e-9, 12345.6789, -0.5, float("nan"), float("inf")]
    memo: dict[str, str] = {}  # the redacted texts, as a batch shares them
    for _ in range(500):
        args = (rng.choice(texts), rng.choice(texts) or "tools/call", rng.choice(texts), rng.choice(texts) or "ok",
                rng.choice(texts), rng.choice(seconds), rng.choice(numbers), rng.choice(numbers),
                rng.choice(numbers), rng.choice(texts), rng.choice(texts), rng.choice(calls), rng.choice(texts),
                rng.choice(texts))
        principal, method, target, outcome, error_kind, secs, inp, out, cost, rid, sid, call, version, status = args
        event = AuditEvent(principal=principal, method=method, target=target, outcome=outcome, error_kind=error_kind,
                           duration_ms=round(secs * 1000, 3), input_tokens=inp, output_tokens=out, cost_usd=cost,
                           request_id=rid, session_id=sid, call=call, version=version, status=status)
        written, expected = log._redacted(event, memo), redactor.redact(event.to_dict())
        assert json.dumps(written, sort_keys=True) == json.dumps(expected, sort_keys=True)
        assert list(written) == list(expected)  # same columns, same order (the JSON lines' key order)
