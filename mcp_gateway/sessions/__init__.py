"""Sessions: conversation history and state that live across tool calls, in memory, SQLite or Redis."""

from ._build import build_sessions
from ._manager import SessionError, SessionManager
from ._model import EndReason, SessionRecord, Turn
from ._store import SessionStore, SessionStoreError

__all__ = [
    "EndReason",
    "SessionError",
    "SessionManager",
    "SessionRecord",
    "SessionStore",
    "SessionStoreError",
    "Turn",
    "build_sessions",
]
