"""Build the session manager a config asks for (or the in-memory default when a tool needs one)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .._errors import ConfigIssue
from ..config import LoadedConfig, SessionsConfig, resolve_env
from ._manager import SessionManager
from ._store import SessionStore

__all__ = ["build_sessions"]



def build_sessions(loaded: LoadedConfig, environ: Mapping[str, str]) -> tuple[SessionManager | None, list[ConfigIssue]]:
    """None when neither a `sessions:` section nor any tool's `context` asks for sessions."""
    located = loaded.sessions
    if located is None and not any(t.value.context is not None for t in loaded.tools):
        return None, []
    settings = located.value if located else SessionsConfig()
    issues: list[ConfigIssue] = []

    def issue(key: str, message: str) -> None:
        assert located is not None  # only a configured store can be misconfigured
        issues.append(located.origin.issue((key,), message))

    store = _store(settings, loaded, environ, issue)
    if store is None:
        return None, issues
    return SessionManager(store, settings), issues


def _store(
    settings: SessionsConfig, loaded: LoadedConfig, environ: Mapping[str, str], issue: Callable[[str, str], None]
) -> SessionStore | None:
    if settings.store == "memory":
        from .memory import MemorySessionStore

        return MemorySessionStore()
    if settings.store == "sqlite":
        if not settings.path:
            issue("path", "the sqlite store needs 'path' (a database file)")
            return None
        from .sqlite import SqliteSessionStore

        return SqliteSessionStore(str(loaded.root / settings.path))
    if not settings.url:
        issue("url", "the redis store needs 'url', such as ${env:REDIS_URL} or redis://127.0.0.1:6379/0")
        return None
    url, missing = resolve_env(settings.url, environ)
    if url is None:
        issue("url", f"environment variable {missing} is not set")
        return None
    from .redis import RedisSessionStore

    # Redis drops ended sessions by key expiry a day after our own purge would, never before it.
    return RedisSessionStore(url, retention=settings.retention_s + 86400)
