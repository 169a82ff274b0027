"""Handshake-era Streamable HTTP sessions with a cap per caller.

Each open protocol session costs memory (~31 KiB measured) until the client deletes it or it idles
out, so one caller opening and abandoning sessions could fill the SDK's global `max_sessions` and
lock everyone else out. `CappedSessionManager` also refuses a new session to a caller who already
holds `max_sessions_per_caller`. Callers are told apart by their credential (client id, issuer,
subject); unauthenticated callers share the global cap only.

The SDK (2.3) has no hook for admission, so this overrides its private `_admit_session` and
`_discard_session`: both run for every session, the first under the manager's creation lock, so
the count is exact.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

__all__ = ["CappedSessionManager"]

log = logging.getLogger("mcp_gateway.http")

_Caller = tuple[str, str | None, str | None]


class CappedSessionManager(StreamableHTTPSessionManager):
    def __init__(self, *args: Any, max_sessions_per_caller: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_sessions_per_caller = max_sessions_per_caller
        self._open: Counter[_Caller] = Counter()
        self._caller_of: dict[str, _Caller] = {}

    def _admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        caller = None if requestor is None else (requestor["client_id"], requestor["issuer"], requestor["subject"])
        cap = self.max_sessions_per_caller
        if caller is not None and cap is not None and self._open[caller] >= cap:
            log.warning("refusing a new protocol session to %s: it has %d open (the cap)", caller[0], cap)
            return None
        transport = super()._admit_session(requestor)
        if transport is not None and caller is not None and transport.mcp_session_id is not None:
            self._open[caller] += 1
            self._caller_of[transport.mcp_session_id] = caller
        return transport

    async def _discard_session(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        caller = self._caller_of.pop(session_id, None)
        if caller is not None:
            self._open[caller] -= 1
            if self._open[caller] <= 0:
                del self._open[caller]
        await super()._discard_session(session_id, transport)
