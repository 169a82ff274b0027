"""Session lifecycle: create, resolve (with ownership and expiry checks), touch, record turns,
end, and the periodic sweep that expires idle sessions and purges old ones."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from .._errors import GatewayError
from .._tokens import estimate_tokens
from ..config import ContextConfig, SessionsConfig
from ._model import EndReason, SessionRecord, Turn
from ._store import SessionStore

__all__ = ["SessionError", "SessionManager"]

log = logging.getLogger("mcp_gateway.sessions")

_REASONS = {"ended": "was ended", "disconnected": "ended when its connection closed",
            "idle": "expired after being idle", "max_lifetime": "reached its maximum lifetime"}


class SessionError(GatewayError):
    """A session handle that cannot be used: unknown (or another client's: said the same way), ended, expired."""


def _json_chars(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str))


class SessionManager:
    def __init__(self, store: SessionStore, settings: SessionsConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self._clock = clock

    def _unknown(self, session_id: str, owner: str | None, record: SessionRecord | None) -> SessionError:
        """One answer for an unknown id and for another caller's: never confirm that an id exists."""
        if record is not None:
            log.info("session %s refused to %s: it belongs to another principal", session_id, owner)
        return SessionError(f"Unknown session: '{session_id}'")

    async def start(self, owner: str) -> SessionRecord:
        now = self._clock()
        record = SessionRecord(
            id="sess_" + secrets.token_urlsafe(18),
            owner=owner,
            created_at=now,
            last_seen=now,
            idle_expires_at=now + self.settings.idle_ttl_s,
            max_expires_at=now + self.settings.max_lifetime_s,
        )
        await self.store.create(record)
        log.info("session %s started", record.id)
        return record

    async def resolve(self, session_id: str, owner: str) -> SessionRecord:
        """The active session `session_id` of `owner`, touched; SessionError otherwise."""
        record = await self.store.get(session_id)
        if record is None or record.owner != owner:
            raise self._unknown(session_id, owner, record)
        now = self._clock()
        if record.active and now >= min(record.idle_expires_at, record.max_expires_at):
            reason: EndReason = "max_lifetime" if now >= record.max_expires_at else "idle"
            record = await self.store.end(session_id, now, reason) or record
        if not record.active:
            raise SessionError(f"Session '{session_id}' {_REASONS.get(record.end_reason or 'ended', 'has ended')}")
        touched = await self.store.touch(session_id, now, min(now + self.settings.idle_ttl_s, record.max_expires_at))
        if touched is None:  # ended between our read and the touch
            raise SessionError(f"Session '{session_id}' has ended")
        return touched

    async def history(self, session_id: str, context: ContextConfig) -> list[Turn]:
        """The turns a tool sees: the newest `turns`, then oldest dropped until within `max_tokens`."""
        turns = await self.store.history(session_id, last=context.turns)
        if context.max_tokens is not None:
            budget = context.max_tokens
            kept: list[Turn] = []
            for turn in reversed(turns):
                cost = estimate_tokens(turn.input) + estimate_tokens(turn.output)
                if cost > budget:
                    break
                budget -= cost
                kept.append(turn)
            turns = kept[::-1]
        return turns

    async def record(self, session_id: str, turn: Turn) -> Turn:
        stored = await self.store.append_turn(session_id, turn)
        if stored is None:
            raise SessionError(f"Session '{session_id}' ended before the answer could be recorded")
        return stored

    async def set_state(self, session_id: str, owner: str, values: dict[str, Any], remove: list[str]) -> SessionRecord:
        """Merge `values` in and drop `remove`; SessionError if the state would exceed `max_state_chars`
        (checked before the write: concurrent writers can overshoot by at most one write each)."""
        current = await self.resolve(session_id, owner)
        merged = {**current.state, **values}
        for key in remove:  # the stores apply `set`, then `remove`
            merged.pop(key, None)
        size = _json_chars(merged)
        if size > self.settings.max_state_chars:
            raise SessionError(f"Session state would be {size:,} characters of JSON; the limit is "
                               f"{self.settings.max_state_chars:,} (remove keys first)")
        record = await self.store.set_state(session_id, values, remove)
        if record is None:
            raise SessionError(f"Session '{session_id}' has ended")
        return record

    async def end(self, session_id: str, owner: str | None, reason: EndReason = "ended") -> SessionRecord:
        """End a session; `owner=None` skips the ownership check (operators, connection teardown)."""
        record = await self.store.get(session_id)
        if record is None or (owner is not None and record.owner != owner):
            raise self._unknown(session_id, owner, record)
        ended = await self.store.end(session_id, self._clock(), reason)
        log.info("session %s ended (%s)", session_id, (ended or record).end_reason)
        return ended or record

    async def sweep(self) -> tuple[list[str], int]:
        """Expire due sessions and purge ended ones past retention; return (expired ids, purged count)."""
        now = self._clock()
        expired = await self.store.expire(now)
        purged = await self.store.purge(now - self.settings.retention_s)
        if expired or purged:
            log.info("sessions: %d expired, %d purged", len(expired), purged)
        return expired, purged
