"""The SQLite session store: one database file, shareable by several gateway processes.

Durability: WAL journal with `synchronous=FULL` by default, so a call returns only after its
transaction is committed *and* the WAL is fsynced: an acknowledged turn survives a kill -9 of the
gateway (NORMAL would already give that) and also an OS crash or power loss (NORMAL would not).
Turns arrive at LLM speed, so one fsync per append costs nothing that matters.

Concurrency: one connection per store, used from a worker thread (`anyio.to_thread.run_sync` with a
capacity limiter of 1, plus a lock) one call at a time, so the event loop never blocks on disk or on
another process's lock, and a burst of calls does not tie up the shared worker-thread pool. Every
write runs in a `BEGIN IMMEDIATE` transaction: the write lock is taken before anything is read, so
two processes appending to one session serialise on it (waiting up to `busy_timeout`) and never both
read the same turn_count. A cancelled call still runs its transaction to completion or rollback.

Schema: created on open by named migrations recorded in `schema_version`; a database written by a
newer gateway (an unknown version) is refused rather than misread.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import anyio
import anyio.to_thread

from ._model import EndReason, SessionRecord, Turn
from ._store import SessionStoreError

__all__ = ["SqliteSessionStore"]

T = TypeVar("T")

# Errors after which the connection is still sound: busy/locked (another process held the write lock
# past busy_timeout) and constraint violations.
_KEEP_CONNECTION_ON = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_CONSTRAINT})

# (version, name, statements). Append new migrations; never edit an applied one.
_MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "sessions and turns", (
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_seen REAL NOT NULL,
            idle_expires_at REAL NOT NULL,
            max_expires_at REAL NOT NULL,
            ended_at REAL,
            end_reason TEXT,
            turn_count INTEGER NOT NULL DEFAULT 0,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(state))
        )""",
        "CREATE INDEX sessions_by_created ON sessions (created_at DESC, id DESC)",
        "CREATE INDEX sessions_by_owner ON sessions (owner, created_at DESC, id DESC)",
        # expire(): only active sessions, by their earliest deadline
        "CREATE INDEX sessions_due ON sessions (min(idle_expires_at, max_expires_at)) WHERE ended_at IS NULL",
        # purge(): only ended sessions, by end time
        "CREATE INDEX sessions_ended ON sessions (ended_at) WHERE ended_at IS NOT NULL",
        """CREATE TABLE turns (
            session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL CHECK (seq >= 1),
            tool TEXT NOT NULL,
            input TEXT NOT NULL,
            output TEXT NOT NULL,
            model TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL NOT NULL,
            input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            PRIMARY KEY (session_id, seq)
        )""",
    )),
)
SCHEMA_VERSION = _MIGRATIONS[-1][0]

_SESSION_COLUMNS = (
    "id, owner, created_at, last_seen, idle_expires_at, max_expires_at, ended_at, end_reason, "
    "turn_count, input_tokens, output_tokens, state"
)
_TURN_COLUMNS = "tool, input, output, model, started_at, ended_at, input_tokens, output_tokens, seq"


def _dump_state(state: dict[str, Any]) -> str:
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _record(row: tuple[Any, ...]) -> SessionRecord:
    return SessionRecord(
        id=row[0], owner=row[1], created_at=row[2], last_seen=row[3], idle_expires_at=row[4],
        max_expires_at=row[5], ended_at=row[6], end_reason=row[7], turn_count=row[8],
        input_tokens=row[9], output_tokens=row[10], state=json.loads(row[11]),
    )


def _turn(row: tuple[Any, ...]) -> Turn:
    return Turn(
        tool=row[0], input=row[1], output=row[2], model=row[3], started_at=row[4], ended_at=row[5],
        input_tokens=row[6], output_tokens=row[7], seq=row[8],
    )


class SqliteSessionStore:
    """Sessions in a SQLite file (WAL). Several stores, in one process or many, may share the file."""

    def __init__(
        self,
        path: str,
        *,
        busy_timeout: float = 5.0,
        synchronous: Literal["NORMAL", "FULL", "EXTRA"] = "FULL",
    ) -> None:
        if synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}")
        self._path = str(path)
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        # Calls queue here, in the event loop, rather than as worker threads blocked on the lock.
        self._limiter = anyio.CapacityLimiter(1)
        self._closed = False

    @property
    def path(self) -> str:
        return self._path

    # -- plumbing ---------------------------------------------------------------------------------

    def _error(self, doing: str, exc: BaseException) -> SessionStoreError:
        return SessionStoreError(f"SQLite session store {self._path!r}: {doing} failed: {exc}")

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False,
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal" and self._path != ":memory:":
                raise SessionStoreError(
                    f"SQLite session store {self._path!r}: cannot use WAL journal mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
            current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise SessionStoreError(
                    f"SQLite session store {self._path!r}: schema version {current} is newer than this "
                    f"gateway supports ({SCHEMA_VERSION}); upgrade the gateway")
            for version, name, statements in _MIGRATIONS:
                if version > current:
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                        (version, name, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _call(self, doing: str, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._closed:
                raise SessionStoreError(f"SQLite session store {self._path!r} is closed")
            conn = self._conn
            if conn is None:
                try:
                    conn = self._conn = self._open()
                except sqlite3.Error as exc:
                    raise self._error("opening the database", exc) from exc
            try:
                return work(conn)
            except BaseException as exc:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if isinstance(exc, sqlite3.Error):
                    code = getattr(exc, "sqlite_errorcode", None)  # extended code; the low byte is the primary
                    if code is None or (code & 0xFF) not in _KEEP_CONNECTION_ON:
                        # The connection may be unusable (I/O error, file replaced): start afresh next call.
                        conn.close()
                        self._conn = None
                    raise self._error(doing, exc) from exc
                raise

    async def _run(self, doing: str, work: Callable[[sqlite3.Connection], T]) -> T:
        return await anyio.to_thread.run_sync(self._call, doing, work, limiter=self._limiter)

    @staticmethod
    def _select(conn: sqlite3.Connection, session_id: str) -> tuple[Any, ...] | None:
        return conn.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)).fetchone()

    # -- the SessionStore protocol ------------------------------------------------------------------

    async def create(self, record: SessionRecord) -> None:
        state = _dump_state(record.state)

        def work(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.id, record.owner, record.created_at, record.last_seen, record.idle_expires_at,
                     record.max_expires_at, record.ended_at, record.end_reason, record.turn_count,
                     record.input_tokens, record.output_tokens, state))
            except sqlite3.IntegrityError as exc:
                raise SessionStoreError(
                    f"SQLite session store {self._path!r}: session {record.id!r} already exists") from exc

        await self._run("create", work)

    async def get(self, session_id: str) -> SessionRecord | None:
        row = await self._run("get", lambda conn: self._select(conn, session_id))
        return None if row is None else _record(row)

    async def touch(self, session_id: str, now: float, idle_expires_at: float) -> SessionRecord | None:
        def work(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                f"UPDATE sessions SET last_seen = ?, idle_expires_at = ? WHERE id = ? AND ended_at IS NULL "
                f"RETURNING {_SESSION_COLUMNS}", (now, idle_expires_at, session_id)).fetchone()
            conn.execute("COMMIT")
            return row

        row = await self._run("touch", work)
        return None if row is None else _record(row)

    async def append_turn(self, session_id: str, turn: Turn) -> Turn | None:
        def work(conn: sqlite3.Connection) -> Turn | None:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute(
                "SELECT turn_count, ended_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None or row[1] is not None:
                conn.execute("ROLLBACK")
                return None
            seq = row[0] + 1
            conn.execute(
                f"INSERT INTO turns (session_id, {_TURN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, turn.tool, turn.input, turn.output, turn.model, turn.started_at, turn.ended_at,
                 turn.input_tokens, turn.output_tokens, seq))
            conn.execute(
                "UPDATE sessions SET turn_count = ?, input_tokens = input_tokens + ?, "
                "output_tokens = output_tokens + ? WHERE id = ?",
                (seq, turn.input_tokens, turn.output_tokens, session_id))
            conn.execute("COMMIT")
            return Turn(
                tool=turn.tool, input=turn.input, output=turn.output, model=turn.model,
                started_at=turn.started_at, ended_at=turn.ended_at, input_tokens=turn.input_tokens,
                output_tokens=turn.output_tokens, seq=seq)

        return await self._run("append_turn", work)

    async def history(self, session_id: str, *, last: int | None = None) -> list[Turn]:
        if last is not None and last <= 0:
            return []

        def work(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            if last is None:
                return conn.execute(
                    f"SELECT {_TURN_COLUMNS} FROM turns WHERE session_id = ? ORDER BY seq",
                    (session_id,)).fetchall()
            rows = conn.execute(
                f"SELECT {_TURN_COLUMNS} FROM turns WHERE session_id = ? ORDER BY seq DESC LIMIT ?",
                (session_id, last)).fetchall()
            rows.reverse()
            return rows

        return [_turn(row) for row in await self._run("history", work)]

    async def set_state(
        self, session_id: str, values: dict[str, Any], remove: Sequence[str] = ()
    ) -> SessionRecord | None:
        incoming = json.loads(_dump_state(values))  # validates and copies before anything changes
        removed = list(remove)

        def work(conn: sqlite3.Connection) -> SessionRecord | None:
            conn.execute("BEGIN IMMEDIATE")
            row = self._select(conn, session_id)
            if row is None or row[6] is not None:
                conn.execute("ROLLBACK")
                return None
            state = json.loads(row[11])
            state.update(incoming)
            for key in removed:
                state.pop(key, None)
            conn.execute("UPDATE sessions SET state = ? WHERE id = ?", (_dump_state(state), session_id))
            conn.execute("COMMIT")
            return _record((*row[:11], _dump_state(state)))

        return await self._run("set_state", work)

    async def end(self, session_id: str, now: float, reason: EndReason) -> SessionRecord | None:
        def work(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL",
                (now, reason, session_id))
            row = self._select(conn, session_id)
            conn.execute("COMMIT")
            return row

        row = await self._run("end", work)
        return None if row is None else _record(row)

    async def list(
        self, *, active: bool | None = None, owner: str | None = None, limit: int = 1000
    ) -> list[SessionRecord]:
        if limit <= 0:
            return []
        where: list[str] = []
        params: list[Any] = []
        if owner is not None:
            where.append("owner = ?")
            params.append(owner)
        if active is not None:
            where.append("ended_at IS NULL" if active else "ended_at IS NOT NULL")
        sql = f"SELECT {_SESSION_COLUMNS} FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(limit)
        rows = await self._run("list", lambda conn: conn.execute(sql, params).fetchall())
        return [_record(row) for row in rows]

    async def expire(self, now: float) -> builtins.list[str]:
        def work(conn: sqlite3.Connection) -> builtins.list[str]:
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(
                "UPDATE sessions SET ended_at = ?1, end_reason = CASE "
                "WHEN idle_expires_at < max_expires_at THEN 'idle' ELSE 'max_lifetime' END "
                "WHERE ended_at IS NULL AND min(idle_expires_at, max_expires_at) <= ?1 "
                "RETURNING id, min(idle_expires_at, max_expires_at)", (now,)).fetchall()
            conn.execute("COMMIT")
            rows.sort(key=lambda row: (row[1], row[0]))
            return [row[0] for row in rows]

        return await self._run("expire", work)

    async def purge(self, ended_before: float) -> int:
        def work(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            count = conn.execute(
                "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?", (ended_before,)).rowcount
            conn.execute("COMMIT")
            return count

        return await self._run("purge", work)

    async def dispose_tool(self, tool: str, *, dry_run: bool = False) -> int:
        def work(conn: sqlite3.Connection) -> int:
            if dry_run:
                return int(conn.execute("SELECT COUNT(*) FROM turns WHERE tool = ?", (tool,)).fetchone()[0])
            conn.execute("BEGIN IMMEDIATE")
            count = conn.execute("DELETE FROM turns WHERE tool = ?", (tool,)).rowcount
            conn.execute("COMMIT")
            return count

        return await self._run("dispose_tool", work)

    async def aclose(self) -> None:
        def work() -> None:
            with self._lock:
                self._closed = True
                if self._conn is not None:
                    conn, self._conn = self._conn, None
                    conn.close()

        await anyio.to_thread.run_sync(work, limiter=self._limiter)
