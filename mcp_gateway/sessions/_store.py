"""The SessionStore protocol: what every backend (memory, SQLite, Redis) provides.

Every method is atomic on its own; together they are enough for the manager to keep sessions
consistent under concurrency and across gateway processes. A backend that cannot be reached
raises `SessionStoreError`; it never half-applies a change.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, Protocol

from .._errors import GatewayError
from ._model import EndReason, SessionRecord, Turn

__all__ = ["SessionStore", "SessionStoreError"]


class SessionStoreError(GatewayError):
    """The session store failed or is unreachable. Nothing was changed by the failed call.

    `str()` names the store (path, Redis address) for operators and logs; `public` is what an MCP
    client is told, since the store's address is none of its business."""

    public = "Session store unavailable; try again shortly"


class SessionStore(Protocol):
    async def create(self, record: SessionRecord) -> None:
        """Insert a new session; the id is fresh (random), so a clash is an error."""
        ...

    async def get(self, session_id: str) -> SessionRecord | None:
        """The record (with its state), or None if unknown or purged."""
        ...

    async def touch(self, session_id: str, now: float, idle_expires_at: float) -> SessionRecord | None:
        """Set last_seen and idle_expires_at of an ACTIVE session; return the new record, or None if
        the session is unknown or already ended."""
        ...

    async def append_turn(self, session_id: str, turn: Turn) -> Turn | None:
        """Append atomically to an ACTIVE session: assign the next seq (1-based, no gaps), add the turn's
        tokens to the session totals, bump turn_count. Return the stored turn (with seq), or None if the
        session is unknown or ended. Concurrent appends never lose or interleave a turn."""
        ...

    async def history(self, session_id: str, *, last: int | None = None) -> builtins.list[Turn]:
        """Turns in seq order; with `last`, only the newest `last` turns (still oldest first)."""
        ...

    async def set_state(self, session_id: str, values: dict[str, Any], remove: Sequence[str] = ()) -> SessionRecord | None:
        """Merge `values` into an ACTIVE session's state and drop `remove` keys, atomically; None if
        unknown or ended. Values are JSON-serialisable."""
        ...

    async def end(self, session_id: str, now: float, reason: EndReason) -> SessionRecord | None:
        """Mark a session ended (idempotent: an ended session keeps its first end time and reason).
        Return the record, or None if unknown."""
        ...

    async def list(
        self, *, active: bool | None = None, owner: str | None = None, limit: int = 1000
    ) -> builtins.list[SessionRecord]:
        """Sessions, newest first, optionally only active (True) or ended (False), or of one owner."""
        ...

    async def expire(self, now: float) -> builtins.list[str]:
        """End every active session whose idle_expires_at or max_expires_at is <= now (reason idle or
        max_lifetime, whichever came first); return their ids."""
        ...

    async def purge(self, ended_before: float) -> int:
        """Delete sessions (and their turns) that ended before `ended_before`; return how many."""
        ...

    async def dispose_tool(self, tool: str, *, dry_run: bool = False) -> int:
        """Delete every turn of `tool` from every session, active or ended (with `dry_run`, only count
        them); return how many. Other turns keep their seq (the history then has gaps), appends go on
        numbering from turn_count, and session totals are left as they were."""
        ...

    async def aclose(self) -> None:
        ...
