"""Append-only audit log: who did what, when, how it ended, how long it took, what it cost.

The hot path only enqueues (`record_nowait`, or `record` which waits for room); a drain task batches
events and hands them to a sink in a worker thread, so no request waits for a disk. `aclose()` (or
leaving `async with`) drains everything queued, then closes the sink.

Sinks:

- `JsonlAuditSink`: one JSON object per line, appended to a file opened O_APPEND (mode 0600);
  a batch is written with one write call; `fsync=True` makes every batch durable before the next.
- `SqliteAuditSink`: an `audit_events` table whose triggers abort any UPDATE or DELETE, so the
  database itself refuses to rewrite history; the class offers no update or delete either.

Every event is redacted before it is written (a `Redactor` with the deployment's secrets). When
the queue is full, `record_nowait` drops the event and counts it in `dropped` (overload must not
stall requests); use `record` where losing an event is worse than waiting.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.abc import TaskGroup

from ..security.redact import MARK, Redactor

__all__ = ["AuditEvent", "AuditLog", "AuditSink", "JsonlAuditSink", "SqliteAuditSink"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audited operation. `outcome` is "ok" or "error" (with `error_kind`, e.g. "rate_limit")."""

    principal: str | None
    method: str  # MCP method: tools/call, prompts/get, resources/read, ...
    target: str | None = None  # tool / prompt name or resource URI
    outcome: str = "ok"
    error_kind: str | None = None
    duration_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    request_id: str | None = None
    session_id: str | None = None
    ts: float = field(default_factory=time.time)
    call: dict[str, Any] | None = None  # a failed tool call's routing facts: route, attempts and their causes
    version: str | None = None  # tools/call: the tool version that answered
    status: str | None = None  # tools/call: its lifecycle status (published, deprecated, ...)
    detail: str | None = None  # JSON text with what else the operation reports (e.g. what a disposal deleted)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_COLUMNS = tuple(AuditEvent.__dataclass_fields__)

class AuditSink(Protocol):
    """Where events end up; called from one worker thread at a time."""

    def write_batch(self, events: Sequence[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class JsonlAuditSink:
    """Appends one JSON line per event to `path`."""

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write_batch(self, events: Sequence[dict[str, Any]]) -> None:
        data = "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
                       for e in events).encode()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    principal TEXT,
    method TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    error_kind TEXT,
    duration_ms REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_usd REAL,
    request_id TEXT,
    session_id TEXT,
    call TEXT,
    version TEXT,
    status TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_events_ts ON audit_events (ts);
CREATE INDEX IF NOT EXISTS audit_events_principal ON audit_events (principal, ts);
CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


def _cell(value: Any) -> Any:
    """A column value: nested data (the `call` facts) is stored as JSON text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if isinstance(value, dict) else value


class SqliteAuditSink:
    """Appends events to an SQLite table that refuses updates and deletes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(audit_events)")}
        for name in _COLUMNS:
            if name not in columns:  # a log written by an older version: add the new column
                self._db.execute(f"ALTER TABLE audit_events ADD COLUMN {name} TEXT")

    def write_batch(self, events: Sequence[dict[str, Any]]) -> None:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        rows = [tuple(_cell(e.get(c)) for c in _COLUMNS) for e in events]
        with self._db:  # one transaction per batch
            self._db.execute("BEGIN")
            self._db.executemany(
                f"INSERT INTO audit_events ({', '.join(_COLUMNS)}) VALUES ({placeholders})", rows)

    def read(self, *, since: float | None = None, principal: str | None = None,
             limit: int = 1000) -> list[dict[str, Any]]:
        """Events oldest first (for the CLI and tests); reading never changes anything."""
        where: list[str] = []
        args: list[object] = []
        if since is not None:
            where.append("ts >= ?")
            args.append(since)
        if principal is not None:
            where.append("principal = ?")
            args.append(principal)
        sql = f"SELECT seq, {', '.join(_COLUMNS)} FROM audit_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        cursor = self._db.execute(sql + " ORDER BY seq LIMIT ?", (*args, limit))
        names = [d[0] for d in cursor.description]
        events = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for event in events:
            if isinstance(event.get("call"), str):
                event["call"] = json.loads(event["call"])
        return events

    def close(self) -> None:
        self._db.close()


class AuditLog:
    """Queues events and drains them into a sink off the hot path. Use as `async with AuditLog(...)`.

    The queue is a plain deque: enqueueing wakes the drain only when it sleeps on an empty queue,
    so a batch costs the event loop two wake-ups however many events it holds."""

    def __init__(self, sink: AuditSink, *, redactor: Redactor | None = None, max_queue: int = 10_000,
                 max_batch: int = 500, batch_window_s: float = 0.05) -> None:
        self.sink = sink
        self.redactor = redactor or Redactor()
        self.max_queue = max_queue
        self.max_batch = max_batch
        self.batch_window_s = batch_window_s
        self.dropped = 0
        self.written = 0
        self._queue: deque[AuditEvent] = deque()
        self._arrived: anyio.Event | None = None  # the drain waits for a first event
        self._full: anyio.Event | None = None  # the drain gathers a batch until max_batch
        self._room: anyio.Event | None = None  # `record` waits for the drain to take events
        # An event's column names are fixed: redact them once, and know which hold secrets.
        self._names = {c: self.redactor.redact_text(c) for c in _COLUMNS}
        self._secret_columns = frozenset(c for c in _COLUMNS if self.redactor.is_secret_field(c))
        self._group: TaskGroup | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self._drain)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    def record_nowait(self, event: AuditEvent) -> bool:
        """Enqueue without waiting; False (and `dropped` += 1) when the queue is full or closed."""
        if self._closed or len(self._queue) >= self.max_queue:
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                logger.warning("audit queue full or closed: %d events dropped so far", self.dropped)
            return False
        self._enqueue(event)
        return True

    async def record(self, event: AuditEvent) -> None:
        """Enqueue, waiting for room when the queue is full (never drops)."""
        await anyio.lowlevel.checkpoint()
        while not self._closed and len(self._queue) >= self.max_queue:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()
        if self._closed:
            raise anyio.ClosedResourceError
        self._enqueue(event)

    def _enqueue(self, event: AuditEvent) -> None:
        self._queue.append(event)
        if self._arrived is not None:
            self._arrived.set()
        if self._full is not None and len(self._queue) >= self.max_batch:
            self._full.set()

    async def _drain(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                if self._closed:
                    return
                self._arrived = anyio.Event()
                await self._arrived.wait()
                self._arrived = None
                continue
            if not self._closed and len(queue) < self.max_batch:
                # Let a batch gather for a moment: one thread hop per batch instead of one per
                # event (a hop costs more than writing a line). Events are queued, so nothing
                # waits on this but the file.
                self._full = anyio.Event()
                with anyio.move_on_after(self.batch_window_s):
                    await self._full.wait()
                self._full = None
            batch = [queue.popleft() for _ in range(min(len(queue), self.max_batch))]
            if self._room is not None:
                self._room.set()
                self._room = None
            await self._write(batch)

    def _redacted(self, event: AuditEvent, texts: dict[str, str] | None = None) -> dict[str, Any]:
        """`redactor.redact(event.to_dict())`, without re-reading the fixed column names each time.

        `texts` remembers the redaction of each text (a batch's events repeat most of theirs:
        principal, method, tool, outcome, version), which is most of the cost of writing an event."""
        redact = self.redactor.redact
        if texts is None:
            texts = {}
        names, secret = self._names, self._secret_columns
        out: dict[str, Any] = {}
        for column in _COLUMNS:
            value = getattr(event, column)
            if column in secret:
                value = MARK
            elif type(value) is str:
                found = texts.get(value)
                if found is None:
                    found = texts[value] = redact(value)
                value = found
            elif value is not None and type(value) not in (int, float, bool):
                value = redact(value)
            out[names[column]] = value
        return out

    async def _write(self, batch: list[AuditEvent]) -> None:
        def work() -> None:
            texts: dict[str, str] = {}  # one batch's: bounded by its size
            self.sink.write_batch([self._redacted(e, texts) for e in batch])

        try:
            with anyio.CancelScope(shield=True):  # a batch taken off the queue is written whole
                await anyio.to_thread.run_sync(work)
            self.written += len(batch)
        except Exception:
            self.dropped += len(batch)
            logger.exception("audit sink failed; %d events lost", len(batch))

    async def aclose(self) -> None:
        """Stop accepting events, write everything queued, close the sink. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for waiting in (self._arrived, self._full, self._room):
            if waiting is not None:
                waiting.set()
        if self._group is not None:
            await self._group.__aexit__(None, None, None)
            self._group = None
        else:  # never started: drain inline
            await self._drain()
        await anyio.to_thread.run_sync(self.sink.close)

