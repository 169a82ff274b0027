"""What a session is: a record with a lifecycle, an ordered history of turns, and key/value state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

__all__ = ["EndReason", "SessionRecord", "Turn"]

EndReason = Literal["ended", "disconnected", "idle", "max_lifetime"]


class Turn(NamedTuple):
    """One tool call in a session. `seq` is assigned by the store: 1, 2, 3... with no gaps.

    A named tuple rather than a frozen dataclass: histories are rebuilt on every call that uses
    context, and tuples are several times cheaper to make."""

    tool: str
    input: str  # the rendered user-facing input (the last user message of the call)
    output: str
    model: str
    started_at: float
    ended_at: float
    input_tokens: int = 0
    output_tokens: int = 0
    seq: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq, "tool": self.tool, "input": self.input, "output": self.output, "model": self.model,
            "started_at": self.started_at, "ended_at": self.ended_at,
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Turn:
        return cls(**{k: data[k] for k in (
            "tool", "input", "output", "model", "started_at", "ended_at", "input_tokens", "output_tokens", "seq")})


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session's metadata. Times are Unix seconds (float)."""

    id: str
    owner: str  # the principal that created it; other principals are refused
    created_at: float
    last_seen: float
    idle_expires_at: float
    max_expires_at: float
    ended_at: float | None = None
    end_reason: EndReason | None = None
    turn_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "owner": self.owner, "created_at": self.created_at, "last_seen": self.last_seen,
            "idle_expires_at": self.idle_expires_at, "max_expires_at": self.max_expires_at,
            "ended_at": self.ended_at, "end_reason": self.end_reason, "turn_count": self.turn_count,
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "state": dict(self.state),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionRecord:
        return cls(**data)
