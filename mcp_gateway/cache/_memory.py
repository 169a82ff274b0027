"""The default response cache: in process memory, least recently used entries dropped past a bound."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from ..providers import Completion

__all__ = ["MemoryCache"]


class MemoryCache:
    """A bounded LRU of answers with a per-entry expiry (clock: `time.monotonic` by default)."""

    def __init__(self, max_entries: int = 10_000, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Completion]] = OrderedDict()
        self._tool_of: dict[str, str] = {}  # entry key -> the tool whose answer it is

    def __len__(self) -> int:
        return len(self._entries)

    async def get_many(self, keys: Sequence[str]) -> list[Completion | None]:
        now = self._clock()
        found: list[Completion | None] = []
        for key in keys:
            entry = self._entries.get(key)
            if entry is None:
                found.append(None)
            elif entry[0] <= now:
                del self._entries[key]
                self._tool_of.pop(key, None)
                found.append(None)
            else:
                self._entries.move_to_end(key)
                found.append(entry[1])
        return found

    async def put(self, key: str, completion: Completion, ttl_s: float, *, tool: str | None = None) -> None:
        self._entries[key] = (self._clock() + ttl_s, completion)
        self._entries.move_to_end(key)
        if tool is not None:
            self._tool_of[key] = tool
        else:
            self._tool_of.pop(key, None)
        while len(self._entries) > self.max_entries:
            dropped, _ = self._entries.popitem(last=False)
            self._tool_of.pop(dropped, None)

    async def dispose_tool(self, tool: str, *, dry_run: bool = False) -> int:
        keys = [key for key, owner in self._tool_of.items() if owner == tool and key in self._entries]
        if not dry_run:
            for key in keys:
                del self._entries[key]
                del self._tool_of[key]
        return len(keys)

    async def aclose(self) -> None:
        self._entries.clear()
        self._tool_of.clear()
