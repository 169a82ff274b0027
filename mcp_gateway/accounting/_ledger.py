"""Running totals of usage and cost: per process, tool, route (model alias), target and caller key.

Every provider call a routed call made is one `Charge`: the answer, a failed try, a hedged call
that lost. A charge whose usage is unknown (a call cancelled or cut off after the provider may
have started billing) or whose model has no price adds no cost and is counted as such, so a total
is never silently low: `unknown_cost` says how many charges it leaves out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..providers import Usage

__all__ = ["DIMENSIONS", "Charge", "Ledger", "Totals", "call_deltas"]

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Charge:
    """One provider call. `usage` None: not known; `cost_usd` None: unknown (no price or no usage)."""

    target: str
    usage: Usage | None
    cost_usd: Decimal | None


_COUNTS = ("calls", "failed", "cache_hits", "provider_calls", "input_tokens", "output_tokens", "cache_read_tokens",
           "cache_write_tokens", "reasoning_tokens", "unknown_cost")


@dataclass(slots=True)
class Totals:
    calls: int = 0  # calls answered (by a provider or the cache)
    failed: int = 0  # calls that ended in an error (refusals by a budget included)
    cache_hits: int = 0
    provider_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = field(default_factory=Decimal)
    unknown_cost: int = 0  # provider calls whose cost is not in cost_usd

    def add(self, charge: Charge) -> None:
        self.provider_calls += 1
        usage = charge.usage
        if usage is not None:
            self.input_tokens += usage.input_tokens
            self.output_tokens += usage.output_tokens
            self.cache_read_tokens += usage.cache_read_tokens
            self.cache_write_tokens += usage.cache_write_tokens
            self.reasoning_tokens += usage.reasoning_tokens
        if charge.cost_usd is None:
            self.unknown_cost += 1
        else:
            self.cost_usd += charge.cost_usd

    def count(self, outcome: str, charges: tuple[Charge, ...]) -> None:
        """One call that ended in `outcome` ("answered", "hit" or "failed"), with its charges."""
        if outcome == "failed":
            self.failed += 1
        else:
            self.calls += 1
            if outcome == "hit":
                self.cache_hits += 1
        for charge in charges:
            self.add(charge)

    def merge(self, other: Totals) -> None:
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost_usd += other.cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "failed": self.failed,
            "cache_hits": self.cache_hits,
            "provider_calls": self.provider_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": str(self.cost_usd),
            "unknown_cost": self.unknown_cost,
        }


DIMENSIONS = ("gateway", "tool", "route", "target", "key")
MINUTE_BUCKETS_S = 25 * 3600  # per-minute totals kept this long ("the last day" at minute precision)
HOUR_BUCKETS_S = 32 * 86400  # per-hour totals kept this long

_Shape = tuple[str | None, str, str | None]  # (tool, route, caller key) of a call
_SHAPE_INDEX = {"tool": 0, "route": 1, "key": 2}


class _Bucket:
    """Totals of the calls of one period, per call shape and per target. A call updates one shape's
    totals and its targets'; the per-dimension totals are summed when read, which is rare."""

    __slots__ = ("calls", "targets")

    def __init__(self) -> None:
        self.calls: dict[_Shape, Totals] = {}
        self.targets: dict[str, Totals] = {}

    def add(self, shape: _Shape, outcome: str, charges: tuple[Charge, ...]) -> None:
        totals = self.calls.get(shape)
        if totals is None:
            totals = self.calls[shape] = Totals()
        totals.count(outcome, charges)
        targets = self.targets
        for charge in charges:
            target = targets.get(charge.target)
            if target is None:
                target = targets[charge.target] = Totals()
            target.add(charge)

    def merge(self, other: _Bucket) -> None:
        for shape, totals in other.calls.items():
            mine = self.calls.get(shape)
            if mine is None:
                mine = self.calls[shape] = Totals()
            mine.merge(totals)
        for name, totals in other.targets.items():
            mine = self.targets.get(name)
            if mine is None:
                mine = self.targets[name] = Totals()
            mine.merge(totals)

    def into(self, by: str, found: dict[str, Totals]) -> dict[str, Totals]:
        """Adds this bucket's totals per `by` to `found` (fresh Totals, never this bucket's own)."""
        if by == "target":
            parts: Iterable[tuple[str | None, Totals]] = self.targets.items()
        elif by == "gateway":
            parts = (("all", totals) for totals in self.calls.values())
        else:
            index = _SHAPE_INDEX[by]
            parts = ((shape[index], totals) for shape, totals in self.calls.items())
        for name, totals in parts:
            if name is not None:
                found.setdefault(name, Totals()).merge(totals)
        return found


def call_deltas(*, tool: str | None, route: str, charges: Iterable[Charge], outcome: str,
                key: str | None = None) -> list[tuple[str, str, Totals]]:
    """What one call adds, scope by scope: (dimension, name, totals)."""
    bucket = _Bucket()  # the call alone, added up as the ledger adds it
    bucket.add((tool, route, key), outcome, tuple(charges))
    [call] = bucket.calls.values()
    deltas = [("gateway", "all", call), ("route", route, call)]
    if tool is not None:
        deltas.append(("tool", tool, call))
    if key is not None:
        deltas.append(("key", key, call))
    deltas += [("target", name, totals) for name, totals in bucket.targets.items()]
    return deltas


class Ledger:
    """Totals of one gateway process (carried over a config reload by `Router.adopt`).

    Kept since start-up (`process`, `tools`, `routes`, `targets`, `keys`) and in per-minute and
    per-hour buckets, so `totals(by=..., since=...)` can answer "the last hour" or "the last day".
    A cluster's ledger (`mcp_gateway.cluster`) answers the same questions for every process.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._since_start = _Bucket()
        self._minutes: dict[int, _Bucket] = {}
        self._hours: dict[int, _Bucket] = {}
        # The calls of one minute not yet added to the three above: a call updates one bucket, and
        # the minute's calls are added to since-start, their minute and their hour together, when
        # the next minute's first call comes or before anything is read.
        self._unsettled = _Bucket()
        self._unsettled_minute: int | None = None

    def record(self, *, tool: str | None, route: str, charges: Iterable[Charge], outcome: str,
               key: str | None = None) -> None:
        """One call: its charges and its `outcome` ("answered", "hit" or "failed"), by the caller's
        `key` when known."""
        minute = int(self._clock() // 60)
        if minute != self._unsettled_minute:
            self._settle()
            self._unsettled_minute = minute
        self._unsettled.add((tool, route, key), outcome, tuple(charges))

    def _settle(self) -> None:
        """Add the unsettled minute's calls to the totals."""
        unsettled, minute = self._unsettled, self._unsettled_minute
        if minute is None or not unsettled.calls:
            return
        self._unsettled = _Bucket()
        self._since_start.merge(unsettled)
        minutes, hours = self._minutes, self._hours
        for buckets, index in ((minutes, minute), (hours, minute // 60)):
            bucket = buckets.get(index)
            if bucket is None:
                bucket = buckets[index] = _Bucket()
            bucket.merge(unsettled)
        if len(minutes) > MINUTE_BUCKETS_S // 60 + 5 or len(hours) > HOUR_BUCKETS_S // 3600 + 5:
            self._prune(self._clock())

    async def flush(self) -> None:
        """Make recorded calls visible to `totals` everywhere (nothing to do in one process).

        Called in the `finally` of a call that may be being cancelled: a ledger that awaits here
        shields that work itself, so the usual case (nothing to send) costs no cancel scope."""

    async def aclose(self) -> None:
        """Send what is still unsent (nothing to do in one process)."""

    async def totals(self, by: str = "gateway", since: float | None = None) -> dict[str, Totals]:
        """Totals per tool, route (model alias), target, key, or for the whole gateway ("all"),
        over the last `since` seconds (None: since start-up). Minute precision up to a day back,
        hour precision beyond (up to 32 days)."""
        return self.local_totals(by, since)

    def local_totals(self, by: str, since: float | None) -> dict[str, Totals]:
        if by not in DIMENSIONS:
            raise ValueError(f"unknown dimension '{by}' (one of: {', '.join(DIMENSIONS)})")
        self._settle()
        if since is None:
            if by == "gateway":
                return {"all": self.process}
            return self._since_start.into(by, {})
        now = self._clock()
        buckets, first = (self._minutes, int((now - since) // 60)) if since <= MINUTE_BUCKETS_S else \
            (self._hours, int((now - since) // 3600))
        found: dict[str, Totals] = {}
        for index, bucket in buckets.items():
            if index >= first:
                bucket.into(by, found)
        return found

    @property
    def process(self) -> Totals:
        """This process' totals since start-up (a copy)."""
        self._settle()
        return self._since_start.into("gateway", {}).get("all") or Totals()

    @property
    def tools(self) -> dict[str, Totals]:
        return self.local_totals("tool", None)

    @property
    def routes(self) -> dict[str, Totals]:
        return self.local_totals("route", None)

    @property
    def targets(self) -> dict[str, Totals]:
        return self.local_totals("target", None)

    @property
    def keys(self) -> dict[str, Totals]:
        return self.local_totals("key", None)

    async def report(self) -> dict[str, Any]:
        """What `gateway://usage` shows: this process' totals since start-up."""
        return {"scope": "process", **self.snapshot()}

    def snapshot(self) -> dict[str, Any]:
        return {
            "process": self.process.to_dict(),
            "tools": {k: v.to_dict() for k, v in sorted(self.tools.items())},
            "routes": {k: v.to_dict() for k, v in sorted(self.routes.items())},
            "targets": {k: v.to_dict() for k, v in sorted(self.targets.items())},
            "keys": {k: v.to_dict() for k, v in sorted(self.keys.items())},
        }

    def _prune(self, now: float) -> None:
        oldest_minute, oldest_hour = int((now - MINUTE_BUCKETS_S) // 60), int((now - HOUR_BUCKETS_S) // 3600)
        for index in [i for i in self._minutes if i < oldest_minute]:
            del self._minutes[index]
        for index in [i for i in self._hours if i < oldest_hour]:
            del self._hours[index]
