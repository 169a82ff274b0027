"""A response cache in Redis (`response_cache: {store: redis, url: ...}`), shared by gateway processes.

Entries are JSON strings under `<prefix><key>` with a Redis expiry (PX), read with one MGET per
call. A Redis that is down or slow never fails a call: a failed read is a miss, a failed write is
dropped, each logged (at most once a minute while the failure lasts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ..providers import Completion
from ._base import completion_from_json, completion_to_json

__all__ = ["RedisCache"]

log = logging.getLogger("mcp_gateway.cache")


class RedisCache:
    def __init__(self, url: str, *, prefix: str = "mcp-gateway:cache:", timeout_s: float = 1.0) -> None:
        self.prefix = prefix
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=False)
        self._last_warning = float("-inf")

    def _warn(self, action: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning >= 60:
            self._last_warning = now
            log.warning("response cache: redis %s failed (%s); calls go to the providers", action, type(exc).__name__)

    async def get_many(self, keys: Sequence[str]) -> list[Completion | None]:
        if not keys:
            return []
        try:
            raw = await self._client.mget([self.prefix + k for k in keys])
        except (RedisError, OSError) as exc:
            self._warn("read", exc)
            return [None] * len(keys)
        found: list[Completion | None] = []
        for value in raw:
            try:
                found.append(None if value is None else completion_from_json(value))
            except (ValueError, KeyError, TypeError):
                found.append(None)  # an entry of another version or a foreign value: a miss
        return found

    async def put(self, key: str, completion: Completion, ttl_s: float) -> None:
        try:
            await self._client.set(self.prefix + key, completion_to_json(completion), px=max(1, round(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            self._warn("write", exc)

    async def aclose(self) -> None:
        await self._client.aclose()
