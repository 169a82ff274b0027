"""The session manager's rules, with an injectable clock: ownership, expiry, context budgets."""

from __future__ import annotations

import pytest


from mcp_gateway.config import ContextConfig, SessionsConfig
from mcp_gateway.sessions import SessionError, SessionManager, Turn
from mcp_gateway.sessions.memory import MemorySessionStore

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def manager(clock: Clock) -> SessionManager:
    settings = SessionsConfig(idle_ttl_s=60, max_lifetime_s=300, retention_s=100)
    return SessionManager(MemorySessionStore(), settings, clock=clock)


def turn(text: str, *, chars: int = 0) -> Turn:
    return Turn(tool="t", input=text + "x" * chars, output="ok", model="m", started_at=0, ended_at=0)


async def test_another_owner_is_refused_everywhere(manager):
    record = await manager.start("alice")
    with pytest.raises(SessionError, match="Unknown session"):
        await manager.resolve(record.id, "mallory")
    with pytest.raises(SessionError, match="Unknown session"):
        await manager.end(record.id, "mallory")
    with pytest.raises(SessionError, match="Unknown session"):
        await manager.set_state(record.id, "mallory", {"x": 1}, [])
    assert (await manager.resolve(record.id, "alice")).active
    # the same words as for an id that does not exist: nothing confirms that alice's id is real
    for probe in (record.id, "sess_never_issued"):
        with pytest.raises(SessionError) as info:
            await manager.resolve(probe, "mallory")
        assert str(info.value) == f"Unknown session: '{probe}'"


async def test_session_state_is_capped(clock):
    settings = SessionsConfig(max_state_chars=100)
    manager = SessionManager(MemorySessionStore(), settings, clock=clock)
    record = await manager.start("a")
    await manager.set_state(record.id, "a", {"k": "x" * 50}, [])
    with pytest.raises(SessionError, match=r"would be 1\d\d characters of JSON; the limit is 100"):
        await manager.set_state(record.id, "a", {"j": "y" * 50}, [])
    assert (await manager.resolve(record.id, "a")).state == {"k": "x" * 50}  # nothing written
    await manager.set_state(record.id, "a", {"j": "y" * 50}, ["k"])  # replacing fits
    assert (await manager.resolve(record.id, "a")).state == {"j": "y" * 50}



async def test_touch_extends_idle_expiry_but_not_past_max_lifetime(manager, clock):
    record = await manager.start("a")
    for _ in range(4):
        clock.now += 50  # each use within the idle TTL keeps it alive
        record = await manager.resolve(record.id, "a")
    assert record.idle_expires_at == clock.now + 60
    clock.now += 59
    record = await manager.resolve(record.id, "a")
    assert record.idle_expires_at == record.max_expires_at == 1_300.0
    clock.now = 1_300.0
    with pytest.raises(SessionError, match="reached its maximum lifetime"):
        await manager.resolve(record.id, "a")


async def test_sweep_expires_idle_sessions_and_purges_after_retention(manager, clock):
    idle = await manager.start("a")
    kept = await manager.start("a")
    clock.now += 50
    await manager.resolve(kept.id, "a")
    clock.now += 20
    expired, purged = await manager.sweep()
    assert expired == [idle.id] and purged == 0
    assert (await manager.store.get(idle.id)).end_reason == "idle"
    clock.now += 101
    expired, purged = await manager.sweep()
    assert expired == [kept.id]  # idle by now, ended in this sweep
    assert purged == 1  # only `idle` ended more than retention_s ago
    assert await manager.store.get(idle.id) is None and await manager.store.get(kept.id) is not None


async def test_context_keeps_the_newest_turns_within_the_token_budget(manager):
    record = await manager.start("a")
    for i in range(6):
        await manager.record(record.id, turn(f"t{i}", chars=40 if i == 3 else 0))
    newest = await manager.history(record.id, ContextConfig(turns=4))
    assert [t.input[:2] for t in newest] == ["t2", "t3", "t4", "t5"]
    # Each short turn costs 1 + 1 tokens; t3 costs 11 + 1. A budget of 6 keeps t4 and t5 only:
    # adding t3 would exceed it, and older turns are never kept once a newer one was dropped.
    budgeted = await manager.history(record.id, ContextConfig(max_tokens=6))
    assert [t.input for t in budgeted] == ["t4", "t5"]
