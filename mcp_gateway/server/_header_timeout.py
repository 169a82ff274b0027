"""uvicorn's HTTP/1.1 protocol with a deadline for request headers.

uvicorn times out idle keep-alive connections, but not one that never finishes its headers: a
client that opens a connection and trickles a byte now and then (slowloris) holds it, and a
file descriptor, for ever; any data cancels the keep-alive timer. This protocol gives every
request's headers `header_timeout` seconds from the moment the connection is opened or the
previous response is complete; past it the connection is closed. Bodies are not timed here (the
body size limit and the call deadline bound them).

uvicorn (0.3x) has no such setting, so this subclasses its h11 protocol and passes the class as
`uvicorn.Config(http=...)`, which uvicorn supports.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["h11_with_header_timeout"]

log = logging.getLogger("mcp_gateway.http")


class _HeaderDeadlineProtocol(H11Protocol):
    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closing a connection from %s: no complete request headers within %.0f s",
                     self.client[0] if self.client else "?", self.header_timeout)
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None and self.conn.their_state is not h11.IDLE:
            self._disarm()  # the headers are in

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request's headers get the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def h11_with_header_timeout(seconds: float) -> type[asyncio.Protocol]:
    """The protocol class to give `uvicorn.Config(http=...)`."""
    return type("HeaderDeadlineH11Protocol", (_HeaderDeadlineProtocol,), {"header_timeout": seconds})
