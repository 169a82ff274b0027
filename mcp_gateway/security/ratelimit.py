"""Rate limits: requests and tokens per minute per key and per tool, and concurrency caps.

Every per-minute limit is a GCRA bucket (a token bucket stored as one number, the "theoretical
arrival time"): a limit of L per minute admits a burst of L and then one more every 60/L seconds.
A check names every bucket and concurrency slot that applies to a request (key rpm, key tpm, tool
rpm, tool tpm, key concurrency, ...) and is all-or-nothing: either every one admits the request and
all are charged, or none is charged and the caller learns how long to wait.

Two backends implement `RateLimitBackend`:

- `MemoryRateLimitBackend`: one process; a check runs under a lock without awaiting, so N
  simultaneous requests against a limit of K admit exactly K.
- `RedisRateLimitBackend`: one Lua script per check, so every gateway process that shares the Redis
  server shares the limits exactly. Time comes from the Redis server (`TIME`), so clock skew between
  gateway hosts does not matter. All keys of one check must live on one node: use a single Redis, or
  a prefix with a hash tag such as `{mgw}:rl:` on a cluster.

Tokens are not known until the provider answers, so a call reserves an estimate up front (e.g.
prompt tokens + the tool's max output tokens) and settles with the real usage afterwards:
`Permit.settle(actual)` refunds an overestimate and charges an underestimate, which may leave the
bucket in debt so later calls wait. An estimate larger than a whole minute's budget is clamped to
that budget, so a big call is admitted once the bucket is full rather than never. A concurrency
slot is released when the `async with` block exits, whether it returns, raises or is cancelled.
Redis slots are leases of `lease_ttl` seconds (30 by default), renewed every third of that while the
call runs (`async with limiter:` runs the renewer), so a crashed process holds a slot for at most
`lease_ttl`. A release that fails because the store is down is kept and retried as soon as the store
answers again (on the renewer's next tick or the next check), so an outage never leaves slots
taken by calls that have long ended.

A rejection is `RateLimitExceeded` with `retry_after` in seconds: exact for per-minute limits (the
time until every refusing bucket has room), a fixed hint (`concurrency_retry_after`) for
concurrency caps, whose release time nobody knows.
"""

from __future__ import annotations

import itertools
import math
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self

import anyio
import anyio.abc

from .._errors import GatewayError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = [
    "Bucket",
    "Decision",
    "MemoryRateLimitBackend",
    "Permit",
    "RateLimitBackend",
    "RateLimitExceeded",
    "RateLimitUnavailable",
    "RateLimiter",
    "RateLimits",
    "RedisRateLimitBackend",
    "Slot",
    "retry_after_header",
]

LimitName = Literal["requests_per_minute", "tokens_per_minute", "max_concurrency"]
Scope = Literal["key", "tool"]

_EPS = 1e-6  # seconds: absorbs float rounding so a limit of K admits K, not K-1
_PERIOD = 60.0


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limits of one key or one tool; None means unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute", "max_concurrency"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


@dataclass(frozen=True, slots=True)
class Bucket:
    """One GCRA bucket: `limit` units per `period` seconds; this check costs `cost` units."""

    name: str
    limit: int
    cost: float
    scope: Scope
    kind: LimitName
    period: float = _PERIOD

    @property
    def interval(self) -> float:
        return self.period / self.limit


@dataclass(frozen=True, slots=True)
class Slot:
    """One concurrency cap: at most `cap` leases held at once under `name`."""

    name: str
    cap: int
    scope: Scope


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one check: `refused_by` is the bucket or slot that said no."""

    allowed: bool
    retry_after: float = 0.0
    refused_by: Bucket | Slot | None = None


class RateLimitExceeded(GatewayError):
    """A request over a rate limit; `retry_after` is the wait in seconds before trying again."""

    def __init__(self, scope: Scope, limit: LimitName, allowed: int, retry_after: float,
                 subject: str) -> None:
        self.scope = scope
        self.limit = limit
        self.allowed = allowed
        self.retry_after = retry_after
        self.subject = subject
        what = {"requests_per_minute": f"{allowed:,} requests per minute",
                "tokens_per_minute": f"{allowed:,} tokens per minute",
                "max_concurrency": f"{allowed:,} concurrent requests"}[limit]
        super().__init__(f"rate limit exceeded: {scope} '{subject}' allows {what}; "
                         f"retry in {retry_after:.1f} s")


class RateLimitUnavailable(GatewayError):
    """The rate-limit backend could not be reached and the limiter is configured to fail closed."""


class RateLimitBackend(Protocol):
    """Atomic bucket arithmetic; implementations must make `acquire` all-or-nothing."""

    async def acquire(self, buckets: Sequence[Bucket], slots: Sequence[Slot], lease: str,
                      lease_ttl: float) -> Decision:
        """Charge every bucket and take a lease on every slot, or change nothing and say why not."""
        ...

    async def adjust(self, bucket: Bucket, delta: float) -> None:
        """Charge (`delta` > 0) or refund (`delta` < 0) units on a bucket, without any check."""
        ...

    async def release(self, slots: Sequence[Slot], lease: str) -> None:
        """Give back the lease on every slot; releasing twice is harmless."""
        ...

    async def renew(self, slots: Sequence[Slot], lease: str, lease_ttl: float) -> None:
        """Extend a lease still held by `lease_ttl` from now (a released one stays released)."""
        ...

    async def aclose(self) -> None:
        ...


# -- in-memory backend ------------------------------------------------------------------------------


class MemoryRateLimitBackend:
    """Limits for one process. Thread-safe; every operation is one critical section."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tats: dict[str, float] = {}
        self._leases: dict[str, set[str]] = {}
        self._sweep_at = 4096

    async def acquire(self, buckets: Sequence[Bucket], slots: Sequence[Slot], lease: str,
                      lease_ttl: float) -> Decision:
        with self._lock:
            now = self._clock()
            for slot in slots:
                if len(self._leases.get(slot.name, ())) >= slot.cap:
                    return Decision(False, 0.0, slot)
            worst: tuple[float, Bucket] | None = None
            new_tats: list[float] = []
            for bucket in buckets:
                tat = max(self._tats.get(bucket.name, now), now) + bucket.cost * bucket.interval
                over = tat - now - bucket.period
                if over > _EPS and (worst is None or over > worst[0]):
                    worst = (over, bucket)
                new_tats.append(tat)
            if worst is not None:
                return Decision(False, worst[0], worst[1])
            for bucket, tat in zip(buckets, new_tats, strict=True):
                self._tats[bucket.name] = tat
            for slot in slots:
                self._leases.setdefault(slot.name, set()).add(lease)
            if len(self._tats) > self._sweep_at:
                self._sweep(now)
            return Decision(True)

    def _sweep(self, now: float) -> None:
        """Forget buckets that are full again (their state equals "never seen")."""
        for name in [name for name, tat in self._tats.items() if tat <= now]:
            del self._tats[name]
        self._sweep_at = max(4096, 2 * len(self._tats))

    async def adjust(self, bucket: Bucket, delta: float) -> None:
        with self._lock:
            now = self._clock()
            tat = max(self._tats.get(bucket.name, now), now) + delta * bucket.interval
            if tat <= now:
                self._tats.pop(bucket.name, None)
            else:
                self._tats[bucket.name] = tat

    async def release(self, slots: Sequence[Slot], lease: str) -> None:
        with self._lock:
            for slot in slots:
                held = self._leases.get(slot.name)
                if held is not None:
                    held.discard(lease)
                    if not held:
                        del self._leases[slot.name]

    async def renew(self, slots: Sequence[Slot], lease: str, lease_ttl: float) -> None:
        return None  # leases in memory never expire: they end with the call or the process

    def in_flight(self, slot_name: str) -> int:
        """Leases currently held on a slot (for tests and metrics)."""
        with self._lock:
            return len(self._leases.get(slot_name, ()))

    async def aclose(self) -> None:
        return None


# -- Redis backend ----------------------------------------------------------------------------------

# Every script's ARGV[1] is the clock: '' takes the Redis server's TIME (one clock for all gateways),
# a number is an injected test clock.
_NOW_LUA = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
"""

# KEYS: the n bucket keys, then the m slot keys.
# ARGV: now ('' = the server's TIME), n, m, lease id, lease ttl, eps,
#       then (interval, cost, period) per bucket, then cap per slot.
# Returns {1} when admitted, else {0, index, retry_after}: index 1..n a bucket, n+1.. a slot.
_ACQUIRE_LUA = _NOW_LUA + """
local n = tonumber(ARGV[2])
local m = tonumber(ARGV[3])
local lease = ARGV[4]
local lease_ttl = tonumber(ARGV[5])
local eps = tonumber(ARGV[6])
local base = 6 + 3 * n
for j = 1, m do
  local skey = KEYS[n + j]
  redis.call('ZREMRANGEBYSCORE', skey, '-inf', now)
  if redis.call('ZCARD', skey) >= tonumber(ARGV[base + j]) then
    return {0, tostring(n + j), '0'}
  end
end
local tats = {}
local worst, worst_i = 0, 0
for i = 1, n do
  local a = 6 + 3 * (i - 1)
  local interval = tonumber(ARGV[a + 1])
  local cost = tonumber(ARGV[a + 2])
  local period = tonumber(ARGV[a + 3])
  local tat = now
  local raw = redis.call('GET', KEYS[i])
  if raw then tat = math.max(tonumber(raw), now) end
  local new = tat + cost * interval
  local over = new - now - period
  if over > eps and over > worst then
    worst = over
    worst_i = i
  end
  tats[i] = new
end
if worst_i > 0 then
  return {0, tostring(worst_i), string.format('%.6f', worst)}
end
for i = 1, n do
  local ttl = math.ceil((tats[i] - now) * 1000) + 1000
  redis.call('SET', KEYS[i], string.format('%.6f', tats[i]), 'PX', ttl)
end
for j = 1, m do
  local skey = KEYS[n + j]
  redis.call('ZADD', skey, now + lease_ttl, lease)
  redis.call('PEXPIRE', skey, math.ceil(lease_ttl * 1000) + 1000)
end
return {1}
"""

# KEYS[1] the bucket; ARGV: now ('' = TIME), interval, delta units.
_ADJUST_LUA = _NOW_LUA + """
local tat = now
local raw = redis.call('GET', KEYS[1])
if raw then tat = math.max(tonumber(raw), now) end
tat = tat + tonumber(ARGV[3]) * tonumber(ARGV[2])
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.6f', tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
end
return 1
"""


# KEYS: the slot keys; ARGV: now ('' = TIME), lease id, lease ttl.
_RENEW_LUA = _NOW_LUA + """
local ttl = tonumber(ARGV[3])
for i = 1, #KEYS do
  if redis.call('ZSCORE', KEYS[i], ARGV[2]) then
    redis.call('ZADD', KEYS[i], 'XX', now + ttl, ARGV[2])
    redis.call('PEXPIRE', KEYS[i], math.ceil(ttl * 1000) + 1000)
  end
end
return 1
"""


class RedisRateLimitBackend:
    """Limits shared by every process using one Redis server; one Lua script per check."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "mgw:rl:",
                 clock: Callable[[], float] | None = None) -> None:
        """`clock=None` uses the Redis server's clock (recommended); tests inject one."""
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._adjust = client.register_script(_ADJUST_LUA)
        self._renew = client.register_script(_RENEW_LUA)

    @classmethod
    def from_url(cls, url: str, *, max_connections: int = 64, pool_timeout: float = 5.0,
                 socket_timeout: float = 2.0, **kwargs: Any) -> RedisRateLimitBackend:
        """A backend with its own blocking pool: past `max_connections` callers wait (up to
        `pool_timeout`) instead of failing, as redis-py's default pool does past 100."""
        import redis.asyncio as aioredis  # optional dependency: only this backend needs it

        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=max_connections, timeout=pool_timeout, socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout)
        return cls(aioredis.Redis.from_pool(pool), **kwargs)

    def _now_arg(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    async def acquire(self, buckets: Sequence[Bucket], slots: Sequence[Slot], lease: str,
                      lease_ttl: float) -> Decision:
        keys = [self._prefix + b.name for b in buckets] + [self._prefix + s.name for s in slots]
        args: list[str | int | float] = [self._now_arg(), len(buckets), len(slots), lease, repr(lease_ttl),
                                         repr(_EPS)]
        for bucket in buckets:
            args += [repr(bucket.interval), repr(float(bucket.cost)), repr(bucket.period)]
        args += [slot.cap for slot in slots]
        reply = await self._acquire(keys=keys, args=args)
        if int(reply[0]) == 1:
            return Decision(True)
        index = int(reply[1]) - 1
        refused: Bucket | Slot = buckets[index] if index < len(buckets) else slots[index - len(buckets)]
        return Decision(False, float(reply[2]), refused)

    async def adjust(self, bucket: Bucket, delta: float) -> None:
        await self._adjust(keys=[self._prefix + bucket.name],
                           args=[self._now_arg(), repr(bucket.interval), repr(float(delta))])

    async def release(self, slots: Sequence[Slot], lease: str) -> None:
        if slots:
            async with self._client.pipeline(transaction=False) as pipe:
                for slot in slots:
                    pipe.zrem(self._prefix + slot.name, lease)
                await pipe.execute()

    async def renew(self, slots: Sequence[Slot], lease: str, lease_ttl: float) -> None:
        if slots:
            await self._renew(keys=[self._prefix + s.name for s in slots],
                              args=[self._now_arg(), lease, repr(lease_ttl)])

    async def aclose(self) -> None:
        await self._client.aclose()


# -- the front end ----------------------------------------------------------------------------------


class Permit:
    """An admitted request: `settle()` the real token usage; exiting the block frees its slots."""

    __slots__ = ("_buckets", "_entered", "_lease", "_limiter", "_slots", "_subject", "reserved", "settled")

    def __init__(self, limiter: RateLimiter, buckets: list[Bucket], slots: list[Slot],
                 subject: dict[Scope, str], reserved: int) -> None:
        self._limiter = limiter
        self._buckets = buckets
        self._slots = slots
        self._subject = subject
        self._lease = ""  # named on entry, when the permit takes slots
        self.reserved = reserved
        self.settled: int | None = None
        self._entered = False

    async def __aenter__(self) -> Self:
        if self._slots:
            self._lease = self._limiter._new_lease()
        if self._buckets or self._slots:
            await self._limiter._admit(self._buckets, self._slots, self._lease, self._subject)
        self._entered = True
        if self._slots:
            self._limiter._held[self._lease] = self._slots
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._entered and self._slots:
            self._limiter._held.pop(self._lease, None)
            await self._limiter._release(self._slots, self._lease)

    async def settle(self, actual_tokens: int) -> None:
        """Replace the reserved token estimate with the actual usage (refund or extra charge)."""
        if self.settled is not None:
            raise RuntimeError("a permit is settled once")
        self.settled = actual_tokens
        for bucket in self._buckets:
            if bucket.kind == "tokens_per_minute":
                delta = max(0, actual_tokens) - bucket.cost  # what this bucket was charged (maybe clamped)
                if delta:
                    await self._limiter._adjust(bucket, delta)


class RateLimiter:
    """Builds the buckets of a request from its limits and runs them through a backend.

    `async with limiter:` runs the lease renewer (needed with a backend whose leases expire, i.e.
    Redis: without it a call longer than `lease_ttl` loses its slot)."""

    def __init__(self, backend: RateLimitBackend, *, lease_ttl: float = 30.0,
                 concurrency_retry_after: float = 1.0, fail_open: bool = False,
                 on_reject: Callable[[RateLimitExceeded], None] | None = None) -> None:
        """`fail_open`: admit requests when the backend is unreachable instead of refusing them."""
        self.backend = backend
        self.lease_ttl = lease_ttl
        self.concurrency_retry_after = concurrency_retry_after
        self.fail_open = fail_open
        self._on_reject = on_reject
        self._held: dict[str, list[Slot]] = {}  # lease -> slots of calls running now
        self._unreleased: dict[str, list[Slot]] = {}  # releases the store did not take yet
        self._renewer: anyio.abc.TaskGroup | None = None
        # Lease ids: unique across every process sharing a store (a random prefix), cheap per call.
        self._lease_prefix = secrets.token_hex(8) + ":"
        self._lease_numbers = itertools.count()
        # The in-memory release never awaits: nothing can cancel it or keep it waiting.
        self._release_inline = type(backend).release is MemoryRateLimitBackend.release

    def _new_lease(self) -> str:
        return f"{self._lease_prefix}{next(self._lease_numbers)}"

    async def __aenter__(self) -> Self:
        self._renewer = anyio.create_task_group()
        await self._renewer.__aenter__()
        self._renewer.start_soon(self._renew_forever)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        assert self._renewer is not None
        self._renewer.cancel_scope.cancel()
        await self._renewer.__aexit__(exc_type, exc, tb)
        self._renewer = None

    async def _renew_forever(self) -> None:
        while True:
            await anyio.sleep(self.lease_ttl / 3)
            await self.renew_now()

    async def renew_now(self) -> None:
        """Retry pending releases, then extend the lease of every call still running."""
        await self._retry_releases()
        for lease, slots in list(self._held.items()):
            try:
                await self.backend.renew(slots, lease, self.lease_ttl)
            except Exception as exc:
                if not _is_backend_failure(exc):
                    raise
                return  # the store is down: try again next tick

    @property
    def pending_releases(self) -> int:
        """Releases waiting for the store to come back (for tests and metrics)."""
        return len(self._unreleased)

    async def _retry_releases(self) -> None:
        for lease, slots in list(self._unreleased.items()):
            try:
                with anyio.fail_after(5):
                    await self.backend.release(slots, lease)
            except Exception as exc:
                if not _is_backend_failure(exc):
                    raise
                return
            self._unreleased.pop(lease, None)

    def limit(self, principal: str, key_limits: RateLimits | None = None, *, tool: str | None = None,
              tool_limits: RateLimits | None = None, tokens: int = 0) -> Permit:
        """`async with limiter.limit(...) as permit:` admits the call or raises RateLimitExceeded.

        `tokens` is the estimate reserved against the tokens-per-minute limits.
        """
        buckets: list[Bucket] = []
        slots: list[Slot] = []
        subject: dict[Scope, str] = {"key": principal, "tool": tool or ""}
        reserved = max(0, int(tokens))
        scoped: tuple[tuple[Scope, str | None, RateLimits | None], ...] = (
            ("key", principal, key_limits), ("tool", tool, tool_limits))
        for scope, name, limits in scoped:
            if limits is None or name is None:
                continue
            tag = "k" if scope == "key" else "t"
            if limits.requests_per_minute is not None:
                buckets.append(Bucket(f"{tag}:{name}:rpm", limits.requests_per_minute, 1, scope,
                                      "requests_per_minute"))
            if limits.tokens_per_minute is not None:
                cost = min(reserved, limits.tokens_per_minute)
                buckets.append(Bucket(f"{tag}:{name}:tpm", limits.tokens_per_minute, cost, scope,
                                      "tokens_per_minute"))
            if limits.max_concurrency is not None:
                slots.append(Slot(f"{tag}:{name}:conc", limits.max_concurrency, scope))
        return Permit(self, buckets, slots, subject, reserved)

    async def _admit(self, buckets: list[Bucket], slots: list[Slot], lease: str,
                     subject: dict[Scope, str]) -> None:
        if not buckets and not slots:
            return
        if self._unreleased and slots:
            await self._retry_releases()
        try:
            decision = await self.backend.acquire(buckets, slots, lease, self.lease_ttl)
        except Exception as exc:
            if self.fail_open and _is_backend_failure(exc):
                return
            if _is_backend_failure(exc):
                raise RateLimitUnavailable(
                    f"the rate-limit store is unavailable: {type(exc).__name__}") from None
            raise
        if decision.allowed:
            return
        refused = decision.refused_by
        assert refused is not None
        if isinstance(refused, Slot):
            error = RateLimitExceeded(refused.scope, "max_concurrency", refused.cap,
                                      self.concurrency_retry_after, subject[refused.scope])
        else:
            error = RateLimitExceeded(refused.scope, refused.kind, refused.limit, decision.retry_after,
                                      subject[refused.scope])
        if self._on_reject is not None:
            self._on_reject(error)
        raise error

    async def _adjust(self, bucket: Bucket, delta: float) -> None:
        try:
            await self.backend.adjust(bucket, delta)
        except Exception as exc:
            if not _is_backend_failure(exc):
                raise  # a lost settlement only skews one minute's budget; a bug should still surface

    async def _release(self, slots: list[Slot], lease: str) -> None:
        if self._release_inline:
            await self.backend.release(slots, lease)
            return
        # Shielded: a cancelled call must still give its slot back. Bounded: a dead Redis must not hang
        # the caller; the release is then kept and retried once the store answers again.
        released = False
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            try:
                await self.backend.release(slots, lease)
                released = True
            except Exception as exc:
                if not _is_backend_failure(exc):
                    raise
        if not released:
            self._unreleased[lease] = slots
            while len(self._unreleased) > 10_000:  # past that, the oldest leases expire on their own
                del self._unreleased[next(iter(self._unreleased))]

    async def aclose(self) -> None:
        await self.backend.aclose()


def _is_backend_failure(exc: BaseException) -> bool:
    """Connection-level trouble of the store (redis errors, OS errors), as opposed to our own bugs."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    try:
        from redis.exceptions import RedisError
    except ImportError:  # pragma: no cover - redis not installed
        return False
    return isinstance(exc, RedisError)


def retry_after_header(error: RateLimitExceeded) -> str:
    """The HTTP Retry-After value for a rejection (whole seconds, rounded up, at least 1)."""
    return str(max(1, math.ceil(error.retry_after)))
