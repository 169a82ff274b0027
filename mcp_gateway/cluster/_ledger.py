"""The usage ledger of a cluster: every process adds its calls to the same Redis hashes.

Three hashes hold the counts: since the cluster began (`usage:all`), per minute
(`usage:m:<minute>`, kept 25 hours) and per hour (`usage:h:<hour>`, kept 32 days); a field is
`<dimension>|<name>|<count>` and cost is counted in pico-USD, so sums are exact integers. A call
is recorded locally at once; `flush` (the router's, after each call) sends it in the background,
off the call path, and calls that end while a send is under way go together in the next one.
`totals` and `report` first send what this process has pending, so they include its own calls.

Redis down: calls are served; increments wait in memory (up to `max_pending` fields) and are sent
once Redis answers again, with a warning logged; `totals` answers from this process' own ledger,
and `report` says so (`"scope": "process"`).
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from typing import Any

import anyio

from ..accounting import DIMENSIONS, Ledger, Totals
from ..accounting._ledger import _COUNTS, HOUR_BUCKETS_S, MINUTE_BUCKETS_S, call_deltas
from ._link import RedisLink, is_outage

__all__ = ["SharedLedger"]

PICO = Decimal(10) ** 12
_SEP = "|"

# KEYS: all, minute, hour. ARGV: minute ttl ms, hour ttl ms, then field, delta pairs.
_ADD_LUA = """
for i = 3, #ARGV, 2 do
  local f, d = ARGV[i], tonumber(ARGV[i + 1])
  redis.call('HINCRBY', KEYS[1], f, d)
  redis.call('HINCRBY', KEYS[2], f, d)
  redis.call('HINCRBY', KEYS[3], f, d)
end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 1
"""


class SharedLedger(Ledger):
    """A `Ledger` whose totals are the cluster's (this process' own stay available locally)."""

    def __init__(self, link: RedisLink, *, max_pending: int = 50_000) -> None:
        super().__init__()
        self._link = link
        self._add = link.client.register_script(_ADD_LUA)
        self._pending: Counter[tuple[int, str]] = Counter()  # (minute, field) -> delta
        self._max_pending = max_pending
        self._lock = anyio.Lock()
        self._scheduled = False

    def record(self, **kwargs: Any) -> None:
        kwargs["charges"] = tuple(kwargs["charges"])
        super().record(**kwargs)
        deltas = call_deltas(**kwargs)
        minute = int(time.time() // 60)
        pending = self._pending
        for dim, name, totals in deltas:
            base = f"{dim}{_SEP}{name}{_SEP}"
            for count in _COUNTS:
                value = getattr(totals, count)
                if value:
                    pending[(minute, base + count)] += value
            if totals.cost_usd:
                pending[(minute, base + "cost_pico")] += int(totals.cost_usd * PICO)

    async def flush(self) -> None:
        """Send what was recorded, in the background when the cluster runs (else now)."""
        if not self._pending or self._scheduled:
            return
        self._scheduled = True
        if not self._link.spawn(self._send_scheduled()):
            self._scheduled = False
            with anyio.CancelScope(shield=True):  # a call being cancelled still sends what it used
                await self.send()

    async def _send_scheduled(self) -> None:
        try:
            while self._pending and await self.send():  # what came in meanwhile goes next
                pass
        finally:
            self._scheduled = False

    async def send(self) -> bool:
        """Send what was recorded now (calls that finished meanwhile share one script run);
        False when Redis could not be reached (it stays pending)."""
        if not self._pending:
            return True
        async with self._lock:
            pending, self._pending = self._pending, Counter()
            if not pending:
                return True
            by_minute: dict[int, list[str | int]] = {}
            for (minute, field), delta in pending.items():
                by_minute.setdefault(minute, []).extend((field, delta))
            try:
                for minute, pairs in by_minute.items():
                    keys = [self._link.key("usage", "all"), self._link.key("usage", "m", str(minute)),
                            self._link.key("usage", "h", str(minute // 60))]
                    await self._add(keys=keys, args=[(MINUTE_BUCKETS_S + 120) * 1000, (HOUR_BUCKETS_S + 7200) * 1000,
                                                     *pairs])
                    for i in range(0, len(pairs), 2):
                        del pending[(minute, str(pairs[i]))]
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self._link.warn("the usage ledger", exc, "usage is kept in memory and sent when it answers again")
                pending.update(self._pending)  # keep what is not sent, newest added on top
                self._pending = pending if len(pending) <= self._max_pending else Counter()
                return False
        return True

    async def aclose(self) -> None:
        with anyio.CancelScope(shield=True):
            await self.send()

    async def totals(self, by: str = "gateway", since: float | None = None) -> dict[str, Totals]:
        found = await self._cluster_totals(by, since)
        return found if found is not None else self.local_totals(by, since)

    async def report(self) -> dict[str, Any]:
        """Cluster totals since the cluster began (this process' own under `this_process`)."""
        await self.send()
        sections: dict[str, Any] = {}
        for dim, title in (("gateway", "process"), ("tool", "tools"), ("route", "routes"), ("target", "targets"),
                           ("key", "keys")):
            found = await self._cluster_totals(dim, None)
            if found is None:
                return {"scope": "process", "note": "the cluster store is unreachable: this process' totals only",
                        **self.snapshot()}
            if dim == "gateway":
                sections[title] = found.get("all", Totals()).to_dict()
            else:
                sections[title] = {k: v.to_dict() for k, v in sorted(found.items())}
        return {"scope": "cluster", **sections, "this_process": self.snapshot()}

    async def _cluster_totals(self, by: str, since: float | None) -> dict[str, Totals] | None:
        if by not in DIMENSIONS:
            raise ValueError(f"unknown dimension '{by}' (one of: {', '.join(DIMENSIONS)})")
        await self.send()
        async with self._lock:  # a send in progress: wait for it (read your own writes)
            pass
        link = self._link
        if since is None:
            keys = [link.key("usage", "all")]
        elif since <= MINUTE_BUCKETS_S:
            now = int(time.time() // 60)
            keys = [link.key("usage", "m", str(m)) for m in range(int((time.time() - since) // 60), now + 1)]
        else:
            now = int(time.time() // 3600)
            keys = [link.key("usage", "h", str(h)) for h in range(int((time.time() - since) // 3600), now + 1)]
        try:
            async with link.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                hashes = await pipe.execute()
        except Exception as exc:
            if not is_outage(exc):
                raise
            link.warn("usage totals", exc, "answering with this process' own totals")
            return None
        prefix = by + _SEP
        found: dict[str, Totals] = {}
        for fields in hashes:
            for raw, value in fields.items():
                field = raw.decode()
                if not field.startswith(prefix):
                    continue
                name, _, count = field[len(prefix):].rpartition(_SEP)
                totals = found.setdefault(name, Totals())
                if count == "cost_pico":
                    totals.cost_usd += Decimal(int(value)) / PICO
                elif count in _COUNTS:
                    setattr(totals, count, getattr(totals, count) + int(value))
        return found
