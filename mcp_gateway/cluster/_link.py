"""The connection every shared piece of a cluster uses: one Redis client with bounded waits.

Every operation is bounded by `timeout_s` (connect, read, write; the wait for a free pooled
connection during a burst by 4x that, at least 2 s), so a Redis that is down or stalled turns into
an error within that time and never into a hung call. Reconnection is redis-py's: the next operation after an outage opens a new
connection, so service comes back without a restart.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from anyio.abc import TaskGroup

__all__ = ["RedisLink", "is_outage"]

log = logging.getLogger("mcp_gateway.cluster")


def is_outage(exc: BaseException) -> bool:
    """Trouble reaching the store (redis errors, OS errors, timeouts), as opposed to our own bugs."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    from redis.exceptions import RedisError

    return isinstance(exc, RedisError)


class RedisLink:
    """A Redis URL, a key prefix and a client; `key(...)` names things under the prefix."""

    def __init__(self, url: str, *, prefix: str = "mgw:", timeout_s: float = 1.0,
                 max_connections: int = 64) -> None:
        import redis.asyncio as aioredis  # optional dependency: only a cluster needs it

        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.process_id = uuid.uuid4().hex[:12]  # tells this process' own broadcasts apart
        # A burst waits for a pooled connection longer than one operation may take (a full pool is
        # load, not an outage); both waits are bounded.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=max(2.0, 4 * timeout_s), socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s, decode_responses=False)
        self.client: aioredis.Redis = aioredis.Redis.from_pool(pool)
        self._warned: dict[str, float] = {}
        self._group: TaskGroup | None = None

    def settings(self) -> tuple[str, str, float]:
        return self.url, self.prefix, self.timeout_s

    def attach(self, group: TaskGroup | None) -> None:
        """Run background work (broadcasts, probe claims) in `group` from now on (None: stop)."""
        self._group = group

    def spawn(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run `work` in the background; False (and `work` dropped) when nothing runs it."""
        if self._group is None:
            work.close()
            return False
        self._group.start_soon(lambda: work)
        return True

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    @property
    def where(self) -> str:
        """The server, for messages: host:port only (a URL may carry a password)."""
        kwargs = self.client.connection_pool.connection_kwargs
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    def warn(self, what: str, exc: BaseException, consequence: str) -> None:
        """Log an outage once a minute per `what`, never the URL (it may hold a password)."""
        now = time.monotonic()
        if now - self._warned.get(what, float("-inf")) >= 60:
            self._warned[what] = now
            log.warning("cluster store (redis at %s) unreachable for %s (%s); %s",
                        self.where, what, type(exc).__name__, consequence)

    async def aclose(self) -> None:
        await self.client.aclose()
