"""Response cache: exact-match reuse of provider answers for tools that opt in (`cache: {ttl_s}`).

Stores: `MemoryCache` (default, a bounded LRU in the process) and `RedisCache` (imported lazily,
needs the `redis` package). Keys: see `_base`.
"""

from typing import Any

from ._base import CacheStore, completion_from_json, completion_to_json, entry_key, request_digest
from ._memory import MemoryCache

__all__ = [
    "CacheStore",
    "MemoryCache",
    "RedisCache",
    "completion_from_json",
    "completion_to_json",
    "entry_key",
    "request_digest",
]


def __getattr__(name: str) -> Any:
    if name == "RedisCache":  # redis is imported only when a config asks for it
        from ._redis import RedisCache

        return RedisCache
    raise AttributeError(name)
