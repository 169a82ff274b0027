"""The in-process session store: the default, and the reference for the other backends' behaviour.

Everything lives in one dict of compact entries. Every method mutates under one store-wide lock and
never awaits while holding it, so each call is atomic against other tasks (and other threads) of the
process. Nothing survives the process.

Memory: an entry is a `__slots__` object; the session state is kept as its JSON text (which is also
what makes `get` hand out a deep copy, and makes values behave exactly as in the SQLite and Redis
stores: tuples come back as lists, keys as strings). Turns are stored column-wise, not as objects:
their four strings in one list (tool and model names shared between turns and sessions) and their
four numbers unboxed in one array of doubles; `history` rebuilds `Turn` objects. That halves what
a turn costs beyond its own text (about 100 bytes instead of about 190).
"""

from __future__ import annotations

import builtins
import heapq
import json
import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from anyio.lowlevel import checkpoint

from ._model import EndReason, SessionRecord, Turn
from ._store import SessionStoreError

__all__ = ["MemorySessionStore"]

_EMPTY_STATE = "{}"
_MAX_SHARED_NAMES = 4096


def _dump_state(state: dict[str, Any]) -> str:
    """Canonical JSON text of a state dict; raises TypeError/ValueError for what JSON cannot hold."""
    if not state:
        return _EMPTY_STATE
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class _Turns:
    """A session's turns, column-wise: position p (0-based) is texts[4p:4p+4] and numbers[4p:4p+4].

    Seqs are implicit (position p holds seq first_seq + p) until a disposal removes turns from the
    middle; from then on `seqs` holds them explicitly."""

    __slots__ = ("numbers", "seqs", "texts")

    def __init__(self) -> None:
        self.texts: list[str] = []  # tool, model, input, output per turn
        self.numbers = array("d")  # started_at, ended_at, input_tokens, output_tokens per turn
        self.seqs: array[int] | None = None

    def __len__(self) -> int:
        return len(self.texts) // 4

    def append(self, turn: Turn, tool: str, model: str, seq: int) -> None:
        self.texts += (tool, model, turn.input, turn.output)
        self.numbers.extend((turn.started_at, turn.ended_at, turn.input_tokens, turn.output_tokens))
        if self.seqs is not None:
            self.seqs.append(seq)

    def turns(self, first_seq: int, start: int) -> list[Turn]:
        """Turns from position `start` (0-based) on; without explicit seqs, position 0 holds `first_seq`."""
        texts, numbers, seqs = self.texts, self.numbers, self.seqs
        return [
            Turn(tool=texts[i], model=texts[i + 1], input=texts[i + 2], output=texts[i + 3],
                 started_at=numbers[i], ended_at=numbers[i + 1], input_tokens=int(numbers[i + 2]),
                 output_tokens=int(numbers[i + 3]), seq=seqs[i // 4] if seqs is not None else first_seq + i // 4)
            for i in range(4 * start, len(texts), 4)
        ]

    def remove_tool(self, tool: str, first_seq: int) -> int:
        """Drop every turn of `tool`; return how many."""
        keep = [p for p in range(len(self)) if self.texts[4 * p] != tool]
        removed = len(self) - len(keep)
        if removed:
            seqs = self.seqs
            self.seqs = array("q", (seqs[p] if seqs is not None else first_seq + p for p in keep))
            self.texts = [self.texts[4 * p + k] for p in keep for k in range(4)]
            self.numbers = array("d", (self.numbers[4 * p + k] for p in keep for k in range(4)))
        return removed


@dataclass(slots=True)
class _Entry:
    owner: str
    created_at: float
    last_seen: float
    idle_expires_at: float
    max_expires_at: float
    ended_at: float | None
    end_reason: EndReason | None
    turn_count: int
    input_tokens: int
    output_tokens: int
    state: str  # JSON text
    turns: _Turns | None  # created by the first append

    def record(self, session_id: str) -> SessionRecord:
        return SessionRecord(
            id=session_id, owner=self.owner, created_at=self.created_at, last_seen=self.last_seen,
            idle_expires_at=self.idle_expires_at, max_expires_at=self.max_expires_at,
            ended_at=self.ended_at, end_reason=self.end_reason, turn_count=self.turn_count,
            input_tokens=self.input_tokens, output_tokens=self.output_tokens, state=json.loads(self.state),
        )


class MemorySessionStore:
    """Sessions in this process's memory. Safe for concurrent tasks and threads of one process."""

    def __init__(self) -> None:
        self._sessions: dict[str, _Entry] = {}
        self._names: dict[str, str] = {}  # tool and model names, shared by every turn that uses them
        self._lock = threading.Lock()  # held only for in-memory work, never across an await
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise SessionStoreError("the memory session store is closed")

    def _shared(self, name: str) -> str:
        shared = self._names.get(name)
        if shared is not None:
            return shared
        if len(self._names) < _MAX_SHARED_NAMES:
            self._names[name] = name
        return name

    async def create(self, record: SessionRecord) -> None:
        await checkpoint()
        state = _dump_state(record.state)
        with self._lock:
            self._check_open()
            if record.id in self._sessions:
                raise SessionStoreError(f"session {record.id!r} already exists")
            self._sessions[record.id] = _Entry(
                owner=record.owner, created_at=record.created_at, last_seen=record.last_seen,
                idle_expires_at=record.idle_expires_at, max_expires_at=record.max_expires_at,
                ended_at=record.ended_at, end_reason=record.end_reason, turn_count=record.turn_count,
                input_tokens=record.input_tokens, output_tokens=record.output_tokens, state=state, turns=None,
            )

    async def get(self, session_id: str) -> SessionRecord | None:
        await checkpoint()
        with self._lock:
            self._check_open()
            entry = self._sessions.get(session_id)
            return None if entry is None else entry.record(session_id)

    async def touch(self, session_id: str, now: float, idle_expires_at: float) -> SessionRecord | None:
        await checkpoint()
        with self._lock:
            self._check_open()
            entry = self._sessions.get(session_id)
            if entry is None or entry.ended_at is not None:
                return None
            entry.last_seen = now
            entry.idle_expires_at = idle_expires_at
            return entry.record(session_id)

    async def append_turn(self, session_id: str, turn: Turn) -> Turn | None:
        await checkpoint()
        with self._lock:
            self._check_open()
            entry = self._sessions.get(session_id)
            if entry is None or entry.ended_at is not None:
                return None
            seq = entry.turn_count + 1
            if entry.turns is None:
                entry.turns = _Turns()
            entry.turns.append(turn, self._shared(turn.tool), self._shared(turn.model), seq)
            entry.turn_count = seq
            entry.input_tokens += turn.input_tokens
            entry.output_tokens += turn.output_tokens
        return turn._replace(seq=seq)

    async def history(self, session_id: str, *, last: int | None = None) -> list[Turn]:
        await checkpoint()
        with self._lock:
            self._check_open()
            entry = self._sessions.get(session_id)
            if entry is None or entry.turns is None or (last is not None and last <= 0):
                return []
            stored = len(entry.turns)
            first_seq = entry.turn_count - stored + 1  # 1 unless the record was created with turns
            start = 0 if last is None else max(0, stored - last)
            return entry.turns.turns(first_seq, start)

    async def set_state(
        self, session_id: str, values: dict[str, Any], remove: Sequence[str] = ()
    ) -> SessionRecord | None:
        await checkpoint()
        incoming = json.loads(_dump_state(values))  # validates and copies before anything changes
        with self._lock:
            self._check_open()
            entry = self._sessions.get(session_id)
            if entry is None or entry.ended_at is not None:
                return None
            state = json.loads(entry.state)
            state.update(incoming)
            for key in remove:
                state.pop(key, None)
            entry.state = _dump_state(state)
            return entry.record(session_id)

    async def end(self, session_id: str, now: float, reason: EndReason) -> SessionRecord | None:
        await checkpoint()
        with self._lock:
            self._check_open()
            entry = self._sessions.get(session_id)
            if entry is None:
                return None
            if entry.ended_at is None:
                entry.ended_at = now
                entry.end_reason = reason
            return entry.record(session_id)

    async def list(
        self, *, active: bool | None = None, owner: str | None = None, limit: int = 1000
    ) -> list[SessionRecord]:
        await checkpoint()
        if limit <= 0:
            return []
        with self._lock:
            self._check_open()
            matching = (
                (entry.created_at, session_id, entry)
                for session_id, entry in self._sessions.items()
                if (owner is None or entry.owner == owner)
                and (active is None or (entry.ended_at is None) == active)
            )
            newest = heapq.nlargest(limit, matching, key=lambda item: (item[0], item[1]))
            return [entry.record(session_id) for _, session_id, entry in newest]

    async def expire(self, now: float) -> builtins.list[str]:
        await checkpoint()
        with self._lock:
            self._check_open()
            due: builtins.list[tuple[float, str, _Entry]] = []
            for session_id, entry in self._sessions.items():
                if entry.ended_at is None:
                    deadline = min(entry.idle_expires_at, entry.max_expires_at)
                    if deadline <= now:
                        due.append((deadline, session_id, entry))
            due.sort(key=lambda item: (item[0], item[1]))
            for _, _, entry in due:
                entry.ended_at = now
                entry.end_reason = "idle" if entry.idle_expires_at < entry.max_expires_at else "max_lifetime"
            return [session_id for _, session_id, _ in due]

    async def purge(self, ended_before: float) -> int:
        await checkpoint()
        with self._lock:
            self._check_open()
            doomed = [
                session_id for session_id, entry in self._sessions.items()
                if entry.ended_at is not None and entry.ended_at < ended_before
            ]
            for session_id in doomed:
                del self._sessions[session_id]
            return len(doomed)

    async def dispose_tool(self, tool: str, *, dry_run: bool = False) -> int:
        await checkpoint()
        with self._lock:
            self._check_open()
            removed = 0
            for entry in self._sessions.values():
                turns = entry.turns
                if turns is None:
                    continue
                if dry_run:
                    removed += sum(1 for p in range(len(turns)) if turns.texts[4 * p] == tool)
                else:
                    removed += turns.remove_tool(tool, entry.turn_count - len(turns) + 1)
            return removed

    async def aclose(self) -> None:
        with self._lock:
            self._closed = True
            self._sessions.clear()
            self._names.clear()
