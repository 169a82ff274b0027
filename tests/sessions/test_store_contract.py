"""The SessionStore contract, run against every backend: memory, SQLite (a file) and Redis (a real server).

Then what only some backends promise: several stores sharing one SQLite file or one Redis server
(as several gateway processes do), SQLite durability across a kill -9, Redis outages, and the memory
cost of an idle session in the memory store.
"""

from __future__ import annotations

import gc
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_gateway.sessions._model import SessionRecord, Turn
from mcp_gateway.sessions._store import SessionStore, SessionStoreError
from mcp_gateway.sessions.memory import MemorySessionStore
from mcp_gateway.sessions.redis import RedisSessionStore
from mcp_gateway.sessions.sqlite import SqliteSessionStore
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
T0 = float(int(time.time()))  # a realistic clock: Redis key expiry is set from these times
BACKENDS = ["memory", "sqlite", "redis"]
SHARED_BACKENDS = ["sqlite", "redis"]

StoreFactory = Callable[[], SessionStore]


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def make_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Builds stores of the backend under test; for SQLite and Redis every store made by one factory
    shares the same data (one file / one key prefix), as separate gateway processes would."""
    stores: list[SessionStore] = []
    redis_url = request.getfixturevalue("redis_url") if backend == "redis" else ""
    prefix = f"test-{uuid.uuid4().hex[:12]}:"

    def make() -> SessionStore:
        store: SessionStore
        if backend == "memory":
            store = MemorySessionStore()
        elif backend == "sqlite":
            store = SqliteSessionStore(str(tmp_path / "sessions.db"))
        else:
            store = RedisSessionStore(redis_url, prefix=prefix, socket_timeout=2.0, connect_timeout=2.0)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.aclose()


@pytest.fixture
def store(make_store: StoreFactory) -> SessionStore:
    return make_store()


def record(session_id: str | None = None, *, owner: str = "alice", created: float = 0.0, idle: float = 300.0,
           max_life: float = 3600.0, state: dict[str, Any] | None = None) -> SessionRecord:
    """A fresh active session created at T0 + created."""
    created_at = T0 + created
    return SessionRecord(
        id=session_id or uuid.uuid4().hex, owner=owner, created_at=created_at, last_seen=created_at,
        idle_expires_at=created_at + idle, max_expires_at=created_at + max_life, state=state or {})


def turn(n: int = 1, *, tool: str = "summarize", input_tokens: int = 10, output_tokens: int = 20) -> Turn:
    return Turn(tool=tool, input=f"question {n}", output=f"answer {n}", model="mock-1",
                started_at=T0 + n, ended_at=T0 + n + 0.25, input_tokens=input_tokens, output_tokens=output_tokens)


# -- create / get -------------------------------------------------------------------------------------


async def test_create_then_get_returns_the_record(store: SessionStore) -> None:
    rec = record(state={"lang": "fr", "nested": {"list": [1, 2.5, None, True], "s": "é"}})
    await store.create(rec)
    assert await store.get(rec.id) == rec
    assert await store.get("no-such-session") is None


async def test_create_clash_is_an_error_and_changes_nothing(store: SessionStore) -> None:
    rec = record(state={"a": 1})
    await store.create(rec)
    with pytest.raises(SessionStoreError, match="already exists"):
        await store.create(record(rec.id, owner="mallory", state={"a": 2}))
    assert await store.get(rec.id) == rec


async def test_returned_state_is_a_copy(store: SessionStore) -> None:
    rec = record(state={"items": [1]})
    await store.create(rec)
    got = await store.get(rec.id)
    assert got is not None
    got.state["items"].append(2)
    got.state["new"] = True
    assert (await store.get(rec.id)) == rec


# -- touch --------------------------------------------------------------------------------------------


async def test_touch_updates_an_active_session_only(store: SessionStore) -> None:
    rec = record()
    await store.create(rec)
    touched = await store.touch(rec.id, T0 + 10, T0 + 310)
    assert touched is not None
    assert (touched.last_seen, touched.idle_expires_at) == (T0 + 10, T0 + 310)
    assert touched.max_expires_at == rec.max_expires_at and touched.created_at == rec.created_at
    assert await store.get(rec.id) == touched

    assert await store.touch("no-such-session", T0 + 11, T0 + 311) is None
    ended = await store.end(rec.id, T0 + 20, "ended")
    assert await store.touch(rec.id, T0 + 30, T0 + 330) is None
    assert await store.get(rec.id) == ended


# -- append_turn / history ----------------------------------------------------------------------------


async def test_append_assigns_seq_and_adds_totals(store: SessionStore) -> None:
    rec = record()
    await store.create(rec)
    stored = [await store.append_turn(rec.id, turn(n, input_tokens=n, output_tokens=10 * n)) for n in (1, 2, 3)]
    assert [t.seq for t in stored if t] == [1, 2, 3]
    for n, got in enumerate(stored, start=1):
        assert got is not None and got.input == f"question {n}" and got.input_tokens == n
        assert got == Turn(**{**turn(n, input_tokens=n, output_tokens=10 * n).to_dict(), "seq": n})
    now = await store.get(rec.id)
    assert now is not None
    assert (now.turn_count, now.input_tokens, now.output_tokens) == (3, 6, 60)
    assert await store.history(rec.id) == stored


async def test_append_to_unknown_or_ended_session_is_refused(store: SessionStore) -> None:
    assert await store.append_turn("no-such-session", turn()) is None
    rec = record()
    await store.create(rec)
    await store.append_turn(rec.id, turn(1))
    ended = await store.end(rec.id, T0 + 5, "ended")
    assert await store.append_turn(rec.id, turn(2)) is None
    assert await store.get(rec.id) == ended
    assert [t.seq for t in await store.history(rec.id)] == [1]


async def test_history_last(store: SessionStore) -> None:
    rec = record()
    await store.create(rec)
    for n in range(1, 6):
        await store.append_turn(rec.id, turn(n))
    assert [t.seq for t in await store.history(rec.id)] == [1, 2, 3, 4, 5]
    assert [t.seq for t in await store.history(rec.id, last=2)] == [4, 5]
    assert [t.input for t in await store.history(rec.id, last=1)] == ["question 5"]
    assert [t.seq for t in await store.history(rec.id, last=50)] == [1, 2, 3, 4, 5]
    assert await store.history(rec.id, last=0) == []
    assert await store.history("no-such-session") == []
    assert await store.history("no-such-session", last=3) == []


async def test_turn_text_round_trips_exactly(store: SessionStore) -> None:
    rec = record()
    await store.create(rec)
    odd = Turn(tool="t", input='quote " backslash \\ newline \n emoji 🙂 nul \x00', output="{}" * 3,
               model="m", started_at=T0 + 0.1, ended_at=T0 + 0.30000000000000004, input_tokens=0, output_tokens=7)
    stored = await store.append_turn(rec.id, odd)
    assert stored is not None
    assert await store.history(rec.id) == [stored]
    assert stored.input == odd.input and stored.ended_at == odd.ended_at


# -- set_state ----------------------------------------------------------------------------------------


async def test_set_state_merges_and_removes(store: SessionStore) -> None:
    rec = record(state={"a": 1, "b": 2})
    await store.create(rec)
    updated = await store.set_state(rec.id, {"b": 3, "c": {"d": [1, "x"]}, "t": (1, 2)}, remove=["a", "absent"])
    assert updated is not None
    assert updated.state == {"b": 3, "c": {"d": [1, "x"]}, "t": [1, 2]}  # JSON semantics: a tuple is a list
    assert await store.get(rec.id) == updated
    again = await store.set_state(rec.id, {}, remove=["b"])
    assert again is not None and again.state == {"c": {"d": [1, "x"]}, "t": [1, 2]}


async def test_set_state_refuses_unknown_ended_and_unserialisable(store: SessionStore) -> None:
    assert await store.set_state("no-such-session", {"a": 1}) is None
    rec = record(state={"a": 1})
    await store.create(rec)
    with pytest.raises((TypeError, ValueError)):
        await store.set_state(rec.id, {"bad": object()})
    assert await store.get(rec.id) == rec
    await store.end(rec.id, T0 + 1, "ended")
    assert await store.set_state(rec.id, {"a": 2}) is None
    got = await store.get(rec.id)
    assert got is not None and got.state == {"a": 1}


# -- end ----------------------------------------------------------------------------------------------


async def test_end_is_idempotent(store: SessionStore) -> None:
    assert await store.end("no-such-session", T0, "ended") is None
    rec = record()
    await store.create(rec)
    await store.append_turn(rec.id, turn())
    first = await store.end(rec.id, T0 + 5, "disconnected")
    assert first is not None and not first.active
    assert (first.ended_at, first.end_reason, first.turn_count) == (T0 + 5, "disconnected", 1)
    second = await store.end(rec.id, T0 + 9, "ended")
    assert second == first
    assert await store.get(rec.id) == first


# -- list ---------------------------------------------------------------------------------------------


async def test_list_filters_and_orders_newest_first(store: SessionStore) -> None:
    specs = [("s3", "alice", 30), ("s1", "bob", 10), ("s5", "alice", 50), ("s2", "alice", 20), ("s4", "bob", 40)]
    for session_id, owner, created in specs:
        await store.create(record(session_id, owner=owner, created=created))
    await store.end("s2", T0 + 60, "ended")
    await store.end("s4", T0 + 61, "idle")

    def ids(records: list[SessionRecord]) -> list[str]:
        return [r.id for r in records]

    assert ids(await store.list()) == ["s5", "s4", "s3", "s2", "s1"]
    assert ids(await store.list(active=True)) == ["s5", "s3", "s1"]
    assert ids(await store.list(active=False)) == ["s4", "s2"]
    assert ids(await store.list(owner="alice")) == ["s5", "s3", "s2"]
    assert ids(await store.list(owner="bob", active=True)) == ["s1"]
    assert ids(await store.list(owner="carol")) == []
    assert ids(await store.list(limit=2)) == ["s5", "s4"]
    assert ids(await store.list(active=True, limit=2)) == ["s5", "s3"]
    assert await store.list(limit=0) == []
    listed = await store.list(owner="bob")
    assert listed == [await store.get("s4"), await store.get("s1")]


# -- expire -------------------------------------------------------------------------------------------


async def test_expire_ends_due_sessions_with_the_earlier_reason(store: SessionStore) -> None:
    await store.create(record("idle-first", idle=10, max_life=100))      # due T0+10: idle
    await store.create(record("max-first", idle=50, max_life=20))        # due T0+20: max_lifetime
    await store.create(record("not-due", idle=40, max_life=100))         # due T0+40
    await store.create(record("touched", idle=10, max_life=100))         # due T0+10, touched to T0+60
    await store.create(record("already-ended", idle=5, max_life=100))
    await store.create(record("same-time", idle=25, max_life=25))        # a tie counts as max_lifetime
    await store.create(record("exactly-now", idle=30, max_life=100))     # due == now: expired
    assert await store.touch("touched", T0 + 8, T0 + 60) is not None
    ended_before = await store.end("already-ended", T0 + 3, "ended")

    expired = await store.expire(T0 + 30)
    assert sorted(expired) == ["exactly-now", "idle-first", "max-first", "same-time"]
    reasons = {}
    for session_id in expired:
        rec = await store.get(session_id)
        assert rec is not None and rec.ended_at == T0 + 30
        reasons[session_id] = rec.end_reason
    assert reasons == {"idle-first": "idle", "max-first": "max_lifetime", "same-time": "max_lifetime",
                       "exactly-now": "idle"}
    for session_id in ("not-due", "touched"):
        rec = await store.get(session_id)
        assert rec is not None and rec.active
    assert await store.get("already-ended") == ended_before
    assert await store.expire(T0 + 30) == []
    assert await store.expire(T0 + 45) == ["not-due"]
    assert sorted(r.id for r in await store.list(active=True)) == ["touched"]


# -- purge --------------------------------------------------------------------------------------------


async def test_purge_deletes_sessions_ended_before_and_their_turns(store: SessionStore) -> None:
    for session_id in ("old", "older", "recent", "active"):
        await store.create(record(session_id))
        await store.append_turn(session_id, turn())
    await store.end("older", T0 + 5, "ended")
    await store.end("old", T0 + 10, "idle")
    await store.end("recent", T0 + 20, "ended")

    assert await store.purge(T0 + 10) == 1  # strictly before: "old" ended exactly at T0+10 stays
    assert await store.get("older") is None and await store.history("older") == []
    assert await store.purge(T0 + 15) == 1
    assert await store.get("old") is None
    assert sorted(r.id for r in await store.list()) == ["active", "recent"]
    assert len(await store.history("recent")) == 1
    assert await store.purge(T0 + 15) == 0
    # a purged id is free again
    await store.create(record("older"))
    assert [t.seq for t in [await store.append_turn("older", turn())] if t] == [1]


async def test_dispose_tool_deletes_that_tools_turns_everywhere_and_nothing_else(
        make_store: StoreFactory, backend: str) -> None:
    store = make_store()
    for session_id in ("a", "b", "ended"):
        await store.create(record(session_id))
        for n, tool in enumerate(("old_tool", "summarize", "old_tool", "old_tool_2"), start=1):
            await store.append_turn(session_id, turn(n, tool=tool))
    await store.end("ended", T0 + 5, "ended")
    await store.create(record("untouched"))
    await store.append_turn("untouched", turn(1, tool="summarize"))
    before = {sid: await store.get(sid) for sid in ("a", "b", "ended", "untouched")}

    assert await store.dispose_tool("old_tool", dry_run=True) == 6
    assert [t.tool for t in await store.history("a")] == ["old_tool", "summarize", "old_tool", "old_tool_2"]
    assert await store.dispose_tool("old_tool") == 6
    assert await store.dispose_tool("old_tool") == 0
    for session_id in ("a", "b", "ended"):
        kept = await store.history(session_id)
        assert [(t.seq, t.tool, t.input) for t in kept] == [(2, "summarize", "question 2"),
                                                            (4, "old_tool_2", "question 4")]
        assert await store.get(session_id) == before[session_id]  # records and totals as they were
    assert [t.seq for t in await store.history("untouched")] == [1]
    if backend in SHARED_BACKENDS:  # another store on the same data (another process) sees the disposal
        other = make_store()
        assert [t.tool for t in await other.history("b")] == ["summarize", "old_tool_2"]
    # appends go on numbering from turn_count
    appended = await store.append_turn("a", turn(5, tool="summarize"))
    assert appended is not None and appended.seq == 5
    assert [t.seq for t in await store.history("a", last=2)] == [4, 5]
    assert [t.seq for t in await store.history("a")] == [2, 4, 5]


# -- lifecycle ----------------------------------------------------------------------------------------


async def test_a_closed_store_raises(make_store: StoreFactory) -> None:
    store = make_store()
    await store.create(record("x"))
    await store.aclose()
    with pytest.raises(SessionStoreError):
        await store.get("x")


# -- concurrency --------------------------------------------------------------------------------------


async def test_concurrent_appends_lose_nothing(store: SessionStore) -> None:
    rec = record()
    await store.create(rec)
    results: list[Turn] = []

    async def one(n: int) -> None:
        stored = await store.append_turn(rec.id, turn(n, input_tokens=n, output_tokens=1000 + n))
        assert stored is not None
        results.append(stored)

    async with anyio.create_task_group() as tg:
        for n in range(1, 101):
            tg.start_soon(one, n)

    assert sorted(t.seq for t in results) == list(range(1, 101))
    history = await store.history(rec.id)
    assert [t.seq for t in history] == list(range(1, 101))
    assert sorted(t.input for t in history) == sorted(f"question {n}" for n in range(1, 101))
    assert {t.seq: t for t in history} == {t.seq: t for t in results}
    final = await store.get(rec.id)
    assert final is not None
    assert final.turn_count == 100
    assert final.input_tokens == sum(range(1, 101))
    assert final.output_tokens == sum(1000 + n for n in range(1, 101))


@pytest.mark.parametrize("backend", SHARED_BACKENDS, indirect=True)
async def test_two_stores_on_the_same_data_append_concurrently(make_store: StoreFactory) -> None:
    first, second = make_store(), make_store()  # two gateway processes, as far as the data can tell
    rec = record()
    await first.create(rec)
    assert await second.get(rec.id) == rec
    results: list[Turn] = []

    async def one(store: SessionStore, n: int) -> None:
        stored = await store.append_turn(rec.id, turn(n, input_tokens=1, output_tokens=n))
        assert stored is not None
        results.append(stored)

    async with anyio.create_task_group() as tg:
        for n in range(1, 101):
            tg.start_soon(one, first if n % 2 else second, n)

    assert sorted(t.seq for t in results) == list(range(1, 101))
    for store in (first, second):
        history = await store.history(rec.id)
        assert [t.seq for t in history] == list(range(1, 101))
        assert sorted(t.output for t in history) == sorted(f"answer {n}" for n in range(1, 101))
        final = await store.get(rec.id)
        assert final is not None
        assert (final.turn_count, final.input_tokens, final.output_tokens) == (100, 100, sum(range(1, 101)))
    # expire from both at once: every due session is ended by exactly one of them
    for n in range(20):
        await first.create(record(f"due-{n:02d}", idle=1))
    with_first: list[str] = []
    with_second: list[str] = []

    async def sweep(store: SessionStore, into: list[str]) -> None:
        into.extend(await store.expire(T0 + 2))

    async with anyio.create_task_group() as tg:
        tg.start_soon(sweep, first, with_first)
        tg.start_soon(sweep, second, with_second)
    assert sorted(with_first + with_second) == [f"due-{n:02d}" for n in range(20)]


# -- memory: the cost of an idle session ----------------------------------------------------------------


def test_memory_store_idle_session_cost() -> None:
    """An idle session with 10 short turns costs < 4 KB in the memory store (texts included)."""
    sessions = 500

    family = "model-1"  # f"mock-{family}" below: a fresh string per turn, as a provider reply gives

    async def fill(store: MemorySessionStore) -> None:
        for i in range(sessions):
            session_id = uuid.uuid4().hex
            await store.create(record(session_id))
            for n in range(10):
                await store.append_turn(session_id, Turn(
                    tool="summarize", input=f"short question #{n} of {i}", output=f"a short answer, {n}/{i}",
                    model=f"mock-{family}", started_at=time.time(), ended_at=time.time(),
                    input_tokens=120 + n, output_tokens=340 + n))

    store = MemorySessionStore()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        anyio.run(fill, store)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    per_session = (after - before) / sessions
    print(f"\nmemory store: {per_session:.0f} bytes per idle session with 10 turns")
    assert per_session < 4096, f"{per_session:.0f} bytes per idle session"
    assert len(store._sessions) == sessions


# -- SQLite -------------------------------------------------------------------------------------------


async def test_sqlite_schema_and_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteSessionStore(str(path))
    await store.create(record("x"))
    assert store._conn is not None
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    await store.aclose()
    again = SqliteSessionStore(str(path))  # reopening runs no migration twice
    assert await again.get("x") is not None
    await again.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version, name FROM schema_version").fetchall() == [(1, "sessions and turns")]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"schema_version", "sessions", "turns"} <= tables
        plan = " ".join(str(row) for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM sessions "
            "WHERE ended_at IS NULL AND min(idle_expires_at, max_expires_at) <= 1"))
        assert "sessions_due" in plan
        conn.execute("INSERT INTO schema_version VALUES (2, 'from the future', 0)")
    newer = SqliteSessionStore(str(path))
    with pytest.raises(SessionStoreError, match="schema version 2 is newer"):
        await newer.get("x")
    await newer.aclose()


async def test_sqlite_errors_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "s.db"
    store = SqliteSessionStore(str(path))
    with pytest.raises(SessionStoreError) as caught:
        await store.get("x")
    assert str(path) in str(caught.value) and "unable to open" in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    await store.aclose()


async def test_sqlite_busy_writer_times_out_into_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteSessionStore(str(path), busy_timeout=0.2)
    await store.create(record("x"))
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with anyio.fail_after(30), pytest.raises(SessionStoreError, match="locked"):  # an error, not a hang
            await store.append_turn("x", turn())
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    stored = await store.append_turn("x", turn())  # the same store carries on
    assert stored is not None and stored.seq == 1
    await store.aclose()


_APPENDER = textwrap.dedent("""
    import sys
    import anyio
    from mcp_gateway.sessions._model import Turn
    from mcp_gateway.sessions.sqlite import SqliteSessionStore

    async def main(path, session_id):
        store = SqliteSessionStore(path)

        async def worker(w):
            n = 0
            while True:
                n += 1
                stored = await store.append_turn(session_id, Turn(
                    tool="t", input=f"w{w} n{n}", output="x" * 200, model="m",
                    started_at=1.0, ended_at=2.0, input_tokens=1, output_tokens=2))
                sys.stdout.write(f"{stored.seq}\\n")
                sys.stdout.flush()

        async with anyio.create_task_group() as tg:
            for w in range(4):
                tg.start_soon(worker, w)

    anyio.run(main, sys.argv[1], sys.argv[2])
""")


def test_sqlite_acknowledged_turns_survive_kill_9(tmp_path: Path) -> None:
    """Three rounds of: a gateway process appends from 4 tasks and acknowledges each seq on stdout,
    it is SIGKILLed mid-load, the file is reopened: every acknowledged seq is there, with no gap."""
    path = str(tmp_path / "durable.db")

    async def setup() -> None:
        store = SqliteSessionStore(path)
        await store.create(record("s"))
        await store.aclose()

    async def read_back() -> tuple[list[int], SessionRecord | None]:
        store = SqliteSessionStore(path)
        try:
            return [t.seq for t in await store.history("s")], await store.get("s")
        finally:
            await store.aclose()

    anyio.run(setup)
    acknowledged: list[int] = []

    for _round in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _APPENDER, path, "s"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        this_round: list[int] = []
        deadline = time.monotonic() + 15
        try:
            while len(this_round) < 200 and time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                this_round.append(int(line))
        finally:
            os.kill(proc.pid, signal.SIGKILL)  # mid-load: appends are in flight
            rest, err = proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        assert len(this_round) >= 200, err.decode(errors="replace")[-2000:]
        acknowledged += this_round + [int(line) for line in rest.split(b"\n")[:-1]]  # complete lines only

        seqs, rec = anyio.run(read_back)
        assert rec is not None
        assert seqs == list(range(1, len(seqs) + 1))  # no gaps, no duplicates
        assert set(acknowledged) <= set(seqs)  # every acknowledged turn is there
        assert len(acknowledged) == len(set(acknowledged))
        assert (rec.turn_count, rec.input_tokens, rec.output_tokens) == (len(seqs), len(seqs), 2 * len(seqs))


# -- Redis --------------------------------------------------------------------------------------------


async def test_redis_key_layout_and_expiry(redis_server: RedisServer) -> None:
    import redis.asyncio as aioredis

    prefix = f"layout-{uuid.uuid4().hex[:8]}:"
    store = RedisSessionStore(redis_server.url, prefix=prefix, retention=3600)
    raw = aioredis.Redis.from_url(redis_server.url, decode_responses=True)

    async def expiry_is_set_from(basis: float, keys: tuple[str, ...], operation: Awaitable[object]) -> None:
        """Both keys expire `retention` after max(basis, the store's wall clock during `operation`)."""
        before = time.time()
        await operation
        after = time.time()
        for key in keys:
            at = await raw.pexpiretime(key)
            earliest, latest = ((max(basis, wall) + 3600) * 1000 for wall in (before, after))
            assert math.floor(earliest) <= at <= math.floor(latest)

    both = (f"{prefix}s:k", f"{prefix}t:k")
    try:
        rec = record("k", idle=100, max_life=50)

        async def fill() -> None:
            await store.create(rec)
            await store.append_turn("k", turn())
            await store.set_state("k", {"lang": "fr"})

        await expiry_is_set_from(rec.max_expires_at, both, fill())
        assert await raw.type(f"{prefix}s:k") == "hash" and await raw.type(f"{prefix}t:k") == "list"
        assert await raw.hget(f"{prefix}s:k", ".lang") == '"fr"'
        assert await raw.zscore(f"{prefix}active", "k") == rec.max_expires_at
        assert await raw.zscore(f"{prefix}created", "k") == rec.created_at
        # the idle deadline now comes first
        await expiry_is_set_from(T0 + 20, both, store.touch("k", T0 + 1, T0 + 20))
        assert await raw.zscore(f"{prefix}active", "k") == T0 + 20
        await expiry_is_set_from(T0 + 2, both, store.end("k", T0 + 2, "ended"))  # kept for the retention
        assert await raw.zscore(f"{prefix}active", "k") is None
        assert await raw.zscore(f"{prefix}ended", "k") == T0 + 2
        # a session dropped by key expiry disappears from the indexes too
        await store.create(record("gone"))
        await raw.delete(f"{prefix}s:gone", f"{prefix}t:gone")
        assert [r.id for r in await store.list()] == ["k"]
        assert await raw.zscore(f"{prefix}created", "gone") is None
        assert await store.expire(T0 + 10_000) == []
        assert await raw.zscore(f"{prefix}active", "gone") is None
    finally:
        await store.aclose()
        await raw.aclose()


async def test_redis_outage_raises_instead_of_hanging_and_recovers(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", persistent=True)  # fsynced AOF: a crash loses nothing acknowledged
    server.start()
    store = RedisSessionStore(server.url, socket_timeout=1.0, connect_timeout=1.0)
    try:
        await store.create(record("s"))
        for n in (1, 2, 3):
            await store.append_turn("s", turn(n))

        server.stop(kill=True)  # the server crashes
        calls = [
            lambda: store.get("s"), lambda: store.append_turn("s", turn(4)), lambda: store.touch("s", T0, T0 + 9),
            lambda: store.list(), lambda: store.expire(T0), lambda: store.history("s"),
        ]
        for call in calls:
            with anyio.fail_after(30), pytest.raises(SessionStoreError, match="127.0.0.1"):
                await call()

        server.start()  # back on the same port, with its data
        assert [t.seq for t in await store.history("s")] == [1, 2, 3]  # the very next call succeeds
        stored = await store.append_turn("s", turn(4))
        assert stored is not None and stored.seq == 4

        # a server that accepts but does not answer (stopped until we continue it): a timeout, then recovery
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            with anyio.fail_after(30), pytest.raises(SessionStoreError, match="Timeout"):
                await store.get("s")
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        rec = await store.get("s")
        assert rec is not None and rec.turn_count == 4
    finally:
        await store.aclose()
        server.stop()
