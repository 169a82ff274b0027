"""A response cache in Redis (`response_cache: {store: redis, url: ...}`), shared by gateway processes.

Entries are JSON strings under `<prefix><key>` with a Redis expiry (PX), read with one MGET per
call. An entry of a tool is also listed in the set `<prefix>tool:<name>` (kept as long as its
longest-lived entry), so disposing of a tool finds its entries without scanning the keyspace. A Redis that is down or slow never fails a call: a failed read is a miss, a failed write is
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

    async def put(self, key: str, completion: Completion, ttl_s: float, *, tool: str | None = None) -> None:
        px = max(1, round(ttl_s * 1000))
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self.prefix + key, completion_to_json(completion), px=px)
                if tool is not None:
                    index = self._index(tool)
                    pipe.sadd(index, key)
                    pipe.pexpire(index, px, gt=True)
                    pipe.pexpire(index, px, nx=True)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._warn("write", exc)

    def _index(self, tool: str) -> str:
        return f"{self.prefix}tool:{tool}"

    async def dispose_tool(self, tool: str, *, dry_run: bool = False) -> int:
        """Unlike reads and writes, disposal must not pass silently: a Redis failure raises."""
        index = self._index(tool)
        keys = [k.decode() if isinstance(k, bytes) else k for k in await self._client.smembers(index)]
        if not keys:
            return 0
        live = await self._client.exists(*[self.prefix + k for k in keys])
        if not dry_run:
            await self._client.delete(*[self.prefix + k for k in keys], index)
        return int(live)

    async def aclose(self) -> None:
        await self._client.aclose()
