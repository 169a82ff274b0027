"""Handshake-era protocol sessions (Streamable HTTP and legacy SSE) with a cap per caller.

Each open protocol session costs memory (~31 KiB measured) until the client deletes it or it idles
out, so one caller opening and abandoning sessions could fill the SDK's global `max_sessions` and
lock everyone else out. `CappedSessionManager` also refuses a new session to a caller who already
holds `max_sessions_per_caller`. Callers are told apart by their credential (client id, issuer,
subject); unauthenticated callers share the global cap only.

A legacy SSE stream is a protocol session too (it lives as long as its GET stays open), so
`legacy_stream` counts it against the same two caps: a caller's Streamable HTTP sessions and SSE
streams share one allowance, and the global cap covers both transports.

The SDK (2.3) has no hook for admission, so this overrides its private `_admit_session` and
`_discard_session`: both run for every session, the first under the manager's creation lock, so
the count is exact.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.auth.middleware.auth_context import AuthenticatedUser
from mcp.server.auth.middleware.bearer_auth import AuthorizationContext, authorization_context
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.types import INTERNAL_ERROR, ErrorData, JSONRPCError
from starlette.responses import Response
from starlette.types import Scope

__all__ = ["CappedSessionManager", "too_many_sessions"]

log = logging.getLogger("mcp_gateway.http")

_Caller = tuple[str, str | None, str | None]


def too_many_sessions() -> Response:
    """The refusal past a cap: the same 503 JSON-RPC error body the SDK answers for Streamable HTTP."""
    body = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=INTERNAL_ERROR, message="Too many open sessions"))
    return Response(body.model_dump_json(by_alias=True, exclude_unset=True), status_code=503,
                    media_type="application/json")


class CappedSessionManager(StreamableHTTPSessionManager):
    def __init__(self, *args: Any, max_sessions_per_caller: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_sessions_per_caller = max_sessions_per_caller
        self._open: Counter[_Caller] = Counter()
        self._caller_of: dict[str, _Caller] = {}
        self._streams = 0  # legacy SSE streams open now

    def _full(self) -> bool:
        return self.max_sessions is not None and len(self._server_instances) + self._streams >= self.max_sessions

    def _room_for(self, caller: _Caller | None) -> bool:
        if self._full():
            return False
        cap = self.max_sessions_per_caller
        if caller is not None and cap is not None and self._open[caller] >= cap:
            log.warning("refusing a new protocol session to %s: it has %d open (the cap)", caller[0], cap)
            return False
        return True

    def _admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        caller = _caller(requestor)
        if not self._room_for(caller):
            return None
        transport = super()._admit_session(requestor)
        if transport is not None and caller is not None and transport.mcp_session_id is not None:
            self._open[caller] += 1
            self._caller_of[transport.mcp_session_id] = caller
        return transport

    async def _discard_session(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        caller = self._caller_of.pop(session_id, None)
        if caller is not None:
            self._release(caller)
        await super()._discard_session(session_id, transport)

    @contextmanager
    def legacy_stream(self, scope: Scope) -> Iterator[bool]:
        """Hold a place for one legacy SSE stream while the block runs; yields False (and holds
        nothing) when a cap is reached."""
        user = scope.get("user")
        caller = _caller(authorization_context(user) if isinstance(user, AuthenticatedUser) else None)
        if not self._room_for(caller):
            if self._full():
                log.warning("refusing a new SSE stream: %d protocol sessions are already open", self.max_sessions)
            yield False
            return
        self._streams += 1
        if caller is not None:
            self._open[caller] += 1
        try:
            yield True
        finally:
            self._streams -= 1
            if caller is not None:
                self._release(caller)

    def _release(self, caller: _Caller) -> None:
        self._open[caller] -= 1
        if self._open[caller] <= 0:
            del self._open[caller]


def _caller(requestor: AuthorizationContext | None) -> _Caller | None:
    return None if requestor is None else (requestor["client_id"], requestor["issuer"], requestor["subject"])
