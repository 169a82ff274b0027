"""Budgets shared by every process of a cluster: reserve and settle are one Lua script each.

The arithmetic is the one of `accounting.Budgets` (a call holds its worst case until it settles
to its actual cost; a call whose worst case does not fit is refused), done inside Redis so that N
processes together admit exactly what one process would. Amounts are integers in pico-USD
(10^-12 USD): a hold is rounded up, a limit down, so rounding can only refuse, never overspend.

Each budget ("total", "tool:<name>", "session:<id>") is three keys: a hash (`reserved`, `spent`
and one `l:<lease>` field per open hold), a sorted set of leases by expiry, and, for a limit with
`window_s`, a hash of spending per slice of 1/64 of the window. A slice leaves the window when all
of it is older than `window_s`, so spending is forgotten up to 1/64 of the window late, never early.
A hold left open by a process that died expires after `lease_ttl_s` and is then charged in full
(its provider call may have been billed). Time is the Redis server's, so host clocks may differ.

Redis down: a call with a budget is refused (`BudgetUnavailableError`, a `BudgetExceededError`
that says why), since an unchecked budget could be overspent. A settle that fails is logged; its
hold then expires and is charged in full, so an outage can only make spending look higher.
"""

from __future__ import annotations

import math
import secrets
from decimal import Decimal
from typing import Any

import anyio

from ..accounting import BudgetExceededError, BudgetUnavailableError
from ._link import RedisLink, is_outage

__all__ = ["BudgetUnavailableError", "SharedBudgets"]

PICO = Decimal(10) ** 12
SLICES = 64

# Shared by both scripts: the server's time, and expiring the leases of dead processes.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function charge(h, w, amount, window, grain, keep)
  if amount <= 0 then return end
  if window > 0 then
    redis.call('HINCRBY', w, tostring(math.floor(now / grain)), amount)
    redis.call('PEXPIRE', w, math.ceil((window + grain) * 1000) + 1000)
  else
    redis.call('HINCRBY', h, 'spent', amount)
  end
end
local function expire(h, z, w, window, grain, keep)
  local dead = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, id in ipairs(dead) do
    local held = tonumber(redis.call('HGET', h, 'l:' .. id) or '0')
    redis.call('HDEL', h, 'l:' .. id)
    redis.call('HINCRBY', h, 'reserved', -held)
    charge(h, w, held, window, grain, keep)
  end
  if #dead > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
end
local function touch(h, z, keep, ttl)
  if keep > 0 then
    redis.call('PEXPIRE', h, keep)
    redis.call('PEXPIRE', z, math.max(keep, ttl))
  end
end
"""

# KEYS: per budget (hash, leases, window). ARGV: lease, lease ttl s, amount, n,
# then per budget: limit, window s (0: none), slice s, keep ms (0: for ever).
# Returns {1} when held, else {0, index of the refusing budget, what it has left}.
_RESERVE_LUA = _PRELUDE + """
local lease, ttl, amount, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, n do
  local h, z, w = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local a = 4 + 4 * (i - 1)
  local limit, window, grain = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  expire(h, z, w, window, grain, 0)
  local used = tonumber(redis.call('HGET', h, 'reserved') or '0')
  if window > 0 then
    local oldest = math.floor((now - window) / grain)
    local slices = redis.call('HGETALL', w)
    for j = 1, #slices, 2 do
      if tonumber(slices[j]) < oldest then
        redis.call('HDEL', w, slices[j])
      else
        used = used + tonumber(slices[j + 1])
      end
    end
  else
    used = used + tonumber(redis.call('HGET', h, 'spent') or '0')
  end
  if amount > limit - used then
    return {0, i, string.format('%.0f', limit - used)}
  end
end
for i = 1, n do
  local h, z = KEYS[3 * i - 2], KEYS[3 * i - 1]
  local keep = tonumber(ARGV[4 + 4 * (i - 1) + 4])
  redis.call('HINCRBY', h, 'reserved', amount)
  redis.call('HSET', h, 'l:' .. lease, amount)
  redis.call('ZADD', z, now + ttl, lease)
  touch(h, z, keep, math.ceil(ttl * 1000))
end
return {1}
"""

# KEYS as above. ARGV: lease, actual (-1: unknown, charge the hold), n, then per budget:
# window s, slice s, keep ms.
_SETTLE_LUA = _PRELUDE + """
local lease, actual, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, n do
  local h, z, w = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  local a = 3 + 3 * (i - 1)
  local window, grain, keep = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local held = redis.call('HGET', h, 'l:' .. lease)
  if held then  -- absent: the lease expired and was charged in full already
    held = tonumber(held)
    redis.call('HDEL', h, 'l:' .. lease)
    redis.call('ZREM', z, lease)
    redis.call('HINCRBY', h, 'reserved', -held)
    local spent = held
    if actual >= 0 then spent = actual end
    charge(h, w, spent, window, grain, keep)
  end
  expire(h, z, w, window, grain, keep)
end
return 1
"""

SESSION_KEEP_MS = 30 * 86_400_000  # a session's budget is forgotten a month after its last call


class _Budget:
    __slots__ = ("keep_ms", "keys", "limit", "scope", "slice_s", "window_s")

    def __init__(self, link: RedisLink, name: str, scope: str, limit: Any, keep_ms: int = 0) -> None:
        self.scope = scope
        self.limit = math.floor(Decimal(str(limit.usd)) * PICO)
        self.window_s = float(limit.window_s or 0)
        self.slice_s = self.window_s / SLICES if self.window_s else 1.0
        self.keep_ms = keep_ms
        base = link.key("budget", name)
        self.keys = (base, base + ":leases", base + ":window")


class SharedHold:
    """One call's hold on its shared budgets; `close` it once with the actual cost."""

    __slots__ = ("_budgets", "_lease", "_owner", "amount", "settled")

    def __init__(self, owner: SharedBudgets, budgets: list[_Budget], lease: str, amount: Decimal) -> None:
        self._owner = owner
        self._budgets = budgets
        self._lease = lease
        self.amount = amount
        self.settled = False

    async def close(self, actual: Decimal | None = None) -> None:
        """Release the hold and charge `actual` (None: unknown, charge the whole hold).

        While the cluster runs, the settle goes in the background, off the call path: until it
        lands (one round trip) the hold still counts, which can only refuse, never overspend."""
        if self.settled:
            return
        self.settled = True
        settle = self._owner._settle(self._budgets, self._lease, actual)
        if not self._owner._link.spawn(settle):
            await self._owner._settle(self._budgets, self._lease, actual)


class SharedBudgets:
    """The budgets of one config, kept in the cluster's Redis (same surface as `Budgets`)."""

    def __init__(self, config: Any, link: RedisLink, *, lease_ttl_s: float = 600.0) -> None:
        self.config = config
        self.max_tokens: int = config.max_tokens
        self._link = link
        self._lease_ttl_s = lease_ttl_s
        self._total = _Budget(link, "total", "the gateway (total)", config.total) if config.total else None
        self._tools = {name: _Budget(link, f"tool:{name}", f"tool '{name}'", limit)
                       for name, limit in config.per_tool.items()}
        self._session_limit = config.per_session
        self._reserve = link.client.register_script(_RESERVE_LUA)
        self._settle_script = link.client.register_script(_SETTLE_LUA)

    def applies(self, tool: str | None, session: str | None) -> bool:
        return (self._total is not None or (tool is not None and tool in self._tools)
                or (session is not None and self._session_limit is not None))

    def scopes(self, tool: str | None, session: str | None) -> str:
        return ", ".join(b.scope for b in self._budgets(tool, session))

    def adopt(self, old: Any) -> None:
        """Spending lives in Redis under the budget's name: nothing to carry over."""

    async def hold(self, tool: str | None, session: str | None, amount: Decimal) -> SharedHold:
        """Hold `amount` on every budget that applies, or raise BudgetExceededError (holding nothing)."""
        budgets = self._budgets(tool, session)
        lease = secrets.token_hex(8)
        pico = math.ceil(amount * PICO)
        keys = [k for b in budgets for k in b.keys]
        args: list[Any] = [lease, repr(self._lease_ttl_s), pico, len(budgets)]
        for b in budgets:
            args += [b.limit, repr(b.window_s), repr(b.slice_s), b.keep_ms]
        try:
            reply = await self._reserve(keys=keys, args=args)
        except Exception as exc:
            if not is_outage(exc):
                raise
            scopes = ", ".join(b.scope for b in budgets)
            self._link.warn("budgets", exc, "calls with a budget are refused")  # the address: in the log only
            raise BudgetUnavailableError(
                f"Budget for {scopes} cannot be checked: the cluster store is unreachable; the call is refused "
                "so the budget cannot be overspent. Try again shortly.", scope=scopes) from None
        if int(reply[0]) == 1:
            return SharedHold(self, budgets, lease, amount)
        refused = budgets[int(reply[1]) - 1]
        left = Decimal(int(reply[2])) / PICO
        raise BudgetExceededError.over(refused.scope, needed=amount, available=left,
                                       limit=Decimal(refused.limit) / PICO, window_s=refused.window_s or None)

    async def _settle(self, budgets: list[_Budget], lease: str, actual: Decimal | None) -> None:
        keys = [k for b in budgets for k in b.keys]
        args: list[Any] = [lease, -1 if actual is None else math.ceil(actual * PICO), len(budgets)]
        for b in budgets:
            args += [repr(b.window_s), repr(b.slice_s), b.keep_ms]
        # Shielded: a cancelled call still settles; bounded by the link's timeouts.
        with anyio.CancelScope(shield=True):
            try:
                await self._settle_script(keys=keys, args=args)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self._link.warn("budgets", exc, "open holds are charged in full when their lease expires")

    def _budgets(self, tool: str | None, session: str | None) -> list[_Budget]:
        found: list[_Budget] = []
        if self._total is not None:
            found.append(self._total)
        if tool is not None and (budget := self._tools.get(tool)) is not None:
            found.append(budget)
        if session is not None and self._session_limit is not None:
            found.append(_Budget(self._link, f"session:{session}", f"session '{session}'", self._session_limit,
                                 keep_ms=SESSION_KEEP_MS))
        return found

