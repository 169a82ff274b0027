"""The Redis session store: sessions shared by every gateway process that talks to one Redis server.

Key layout (`P` is the prefix, "mcpgw:" by default):

    P s:<id>     hash    owner, created_at, last_seen, idle_expires_at, max_expires_at, turn_count,
                         input_tokens, output_tokens, ended_at + end_reason (only once ended), and one
                         field ".<key>" per state key holding that value's JSON
    P t:<id>     list    the turns as JSON, oldest first, each with its seq (gapless unless a tool's
                         turns were disposed of)
    P active     zset    id -> min(idle_expires_at, max_expires_at) of every active session (expire())
    P created    zset    id -> created_at of every session (list(), newest first)
    P ended      zset    id -> ended_at of every ended session (purge())

Every change is one Lua script, so it is atomic across processes and either applies whole or not
at all: append checks the session is active, HINCRBYs turn_count (that is the seq), RPUSHes the
turn, HINCRBYs the token totals and refreshes the key expiry, in one step. expire() and purge()
read their candidates from a sorted set, then apply every change in one script that re-checks each
candidate.

The session hash and its turn list carry a Redis expiry (PEXPIREAT) at
max(min(idle_expires_at, max_expires_at), now) + retention while active, refreshed by touch and
append, and at max(ended_at, now) + retention once ended: an abandoned deployment leaves nothing
behind for ever, while a live sweeper (expire/purge) decides first. Index entries of sessions that
Redis dropped that way are cleaned up when a later call meets them.

Errors: the client never retries on its own (retrying an append whose reply was lost would store
the turn twice); a connection error or timeout becomes SessionStoreError, and the next call
reconnects. Caveat of any remote store: when a *timeout* hits after the server received the
command, the change may still have been applied.
"""

from __future__ import annotations

import builtins
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ._model import EndReason, SessionRecord, Turn
from ._store import SessionStoreError

__all__ = ["RedisSessionStore"]

T = TypeVar("T")

_STATE = "."  # prefix of the hash fields that hold state keys
_PAGE = 200  # list(): ids fetched per round trip

# Shared by every script: (re)set the expiry of a session's two keys from a basis time in seconds.
_LUA_EXPIRY = """
local function set_expiry(skey, tkey, basis, wall, retention)
  local at = (math.max(basis, wall) + retention) * 1000
  if at ~= at or at > 9e15 then
    redis.call('PERSIST', skey)
    redis.call('PERSIST', tkey)
  else
    at = string.format('%d', math.floor(at))
    redis.call('PEXPIREAT', skey, at)
    redis.call('PEXPIREAT', tkey, at)
  end
end
"""

# KEYS: s, t, active, created, ended
# ARGV: id, created_at, ended_at ('' if active), due, wall, retention, field, value, field, value...
_LUA_CREATE = _LUA_EXPIRY + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
for i = 7, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
local basis
if ARGV[3] == '' then
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
  basis = tonumber(ARGV[4])
else
  redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
  basis = tonumber(ARGV[3])
end
set_expiry(KEYS[1], KEYS[2], basis, tonumber(ARGV[5]), tonumber(ARGV[6]))
return 1
"""

# KEYS: s, t, active    ARGV: id, now, idle_expires_at, wall, retention
_LUA_TOUCH = _LUA_EXPIRY + """
local f = redis.call('HMGET', KEYS[1], 'owner', 'ended_at', 'max_expires_at')
if not f[1] or f[2] then return false end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[2], 'idle_expires_at', ARGV[3])
local due, due_text = tonumber(ARGV[3]), ARGV[3]
if tonumber(f[3]) < due then due, due_text = tonumber(f[3]), f[3] end
redis.call('ZADD', KEYS[3], due_text, ARGV[1])
set_expiry(KEYS[1], KEYS[2], due, tonumber(ARGV[4]), tonumber(ARGV[5]))
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: s, t    ARGV: turn JSON without its opening '{', input_tokens, output_tokens, wall, retention
_LUA_APPEND = _LUA_EXPIRY + """
local f = redis.call('HMGET', KEYS[1], 'owner', 'ended_at', 'idle_expires_at', 'max_expires_at')
if not f[1] or f[2] then return false end
local seq = redis.call('HINCRBY', KEYS[1], 'turn_count', 1)
redis.call('HINCRBY', KEYS[1], 'input_tokens', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'output_tokens', ARGV[3])
redis.call('RPUSH', KEYS[2], '{"seq":' .. string.format('%d', seq) .. ',' .. ARGV[1])
set_expiry(KEYS[1], KEYS[2], math.min(tonumber(f[3]), tonumber(f[4])), tonumber(ARGV[4]), tonumber(ARGV[5]))
return seq
"""

# KEYS: s    ARGV: number of pairs n, n x (field, JSON value), fields to delete...
_LUA_SET_STATE = """
local f = redis.call('HMGET', KEYS[1], 'owner', 'ended_at')
if not f[1] or f[2] then return false end
local n = tonumber(ARGV[1])
for i = 2, 2 * n, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = 2 * n + 2, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: s, t, active, ended    ARGV: id, now, reason, wall, retention
_LUA_END = _LUA_EXPIRY + """
local f = redis.call('HMGET', KEYS[1], 'owner', 'ended_at')
if not f[1] then return false end
if not f[2] then
  redis.call('HSET', KEYS[1], 'ended_at', ARGV[2], 'end_reason', ARGV[3])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[2], ARGV[1])
  set_expiry(KEYS[1], KEYS[2], tonumber(ARGV[2]), tonumber(ARGV[4]), tonumber(ARGV[5]))
end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: active, ended, created, then (s, t) per candidate    ARGV: now, wall, retention, candidate ids...
_LUA_EXPIRE = _LUA_EXPIRY + """
local now, wall, retention = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local s, t = KEYS[2 * i - 4], KEYS[2 * i - 3]
  local f = redis.call('HMGET', s, 'owner', 'ended_at', 'idle_expires_at', 'max_expires_at')
  if not f[1] then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  elseif f[2] then
    redis.call('ZREM', KEYS[1], id)
  else
    local idle, maxe = tonumber(f[3]), tonumber(f[4])
    if math.min(idle, maxe) <= now then
      local reason = 'max_lifetime'
      if idle < maxe then reason = 'idle' end
      redis.call('HSET', s, 'ended_at', ARGV[1], 'end_reason', reason)
      redis.call('ZREM', KEYS[1], id)
      redis.call('ZADD', KEYS[2], ARGV[1], id)
      set_expiry(s, t, now, wall, retention)
      out[#out + 1] = id
    end
  end
end
return out
"""

# KEYS: active, ended, created, then (s, t) per candidate    ARGV: ended_before, candidate ids...
_LUA_PURGE = """
local before = tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local s, t = KEYS[2 * i], KEYS[2 * i + 1]
  local f = redis.call('HMGET', s, 'owner', 'ended_at')
  if not f[1] or (f[2] and tonumber(f[2]) < before) then
    if f[1] then n = n + 1 end
    redis.call('DEL', s, t)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  elseif f[2] then
    redis.call('ZADD', KEYS[2], f[2], id)
  else
    redis.call('ZREM', KEYS[2], id)
  end
end
return n
"""


# KEYS: turn lists    ARGV: tool name, "1" to only count
_LUA_DISPOSE = """
local removed = 0
for _, key in ipairs(KEYS) do
  for _, item in ipairs(redis.call('LRANGE', key, 0, -1)) do
    local ok, turn = pcall(cjson.decode, item)
    if ok and turn['tool'] == ARGV[1] then
      removed = removed + 1
      if ARGV[2] ~= '1' then redis.call('LREM', key, 1, item) end
    end
  end
end
return removed
"""


def _num(value: float) -> str:
    """A float as text that Redis, Lua and Python all read back as exactly the same double."""
    return repr(float(value))


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _record(session_id: str, fields: dict[str, str]) -> SessionRecord:
    ended_at = fields.get("ended_at")
    return SessionRecord(
        id=session_id, owner=fields["owner"], created_at=float(fields["created_at"]),
        last_seen=float(fields["last_seen"]), idle_expires_at=float(fields["idle_expires_at"]),
        max_expires_at=float(fields["max_expires_at"]),
        ended_at=None if ended_at is None else float(ended_at),
        end_reason=fields.get("end_reason"),  # type: ignore[arg-type]
        turn_count=int(fields["turn_count"]), input_tokens=int(fields["input_tokens"]),
        output_tokens=int(fields["output_tokens"]),
        state={k[1:]: json.loads(v) for k, v in fields.items() if k.startswith(_STATE)},
    )


def _state_fields(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Validate and normalise like the other stores (a JSON round trip), then one field per key."""
    normal = json.loads(json.dumps(values, allow_nan=False))
    return [(_STATE + key, json.dumps(value, separators=(",", ":"), ensure_ascii=False))
            for key, value in normal.items()]


class RedisSessionStore:
    """Sessions in Redis (standalone server; redis-py's asyncio client)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "mcpgw:",
        retention: float = 7 * 24 * 3600.0,
        socket_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        max_connections: int = 50,
        pool_timeout: float = 10.0,
    ) -> None:
        self._where = _redact(url)
        self._prefix = prefix
        self._retention = float(retention)
        # A blocking pool: past max_connections concurrent calls wait (up to pool_timeout) for a free
        # connection instead of failing. No automatic retry: see the module docstring.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, socket_timeout=socket_timeout, socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 0), max_connections=max_connections, timeout=pool_timeout,
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._k_active = f"{prefix}active"
        self._k_created = f"{prefix}created"
        self._k_ended = f"{prefix}ended"
        register = self._redis.register_script
        self._create = register(_LUA_CREATE)
        self._touch = register(_LUA_TOUCH)
        self._append = register(_LUA_APPEND)
        self._set_state = register(_LUA_SET_STATE)
        self._end = register(_LUA_END)
        self._expire = register(_LUA_EXPIRE)
        self._purge = register(_LUA_PURGE)
        self._dispose = register(_LUA_DISPOSE)
        self._closed = False

    def _s(self, session_id: str) -> str:
        return f"{self._prefix}s:{session_id}"

    def _t(self, session_id: str) -> str:
        return f"{self._prefix}t:{session_id}"

    async def _call(self, doing: str, operation: Callable[[], Awaitable[T]]) -> T:
        if self._closed:
            raise SessionStoreError(f"Redis session store {self._where} is closed")
        try:
            return await operation()
        except (RedisError, OSError) as exc:
            raise SessionStoreError(
                f"Redis session store {self._where}: {doing} failed: {type(exc).__name__}: {exc}") from exc

    # -- the SessionStore protocol ------------------------------------------------------------------

    async def create(self, record: SessionRecord) -> None:
        fields: list[str] = [
            "owner", record.owner, "created_at", _num(record.created_at), "last_seen", _num(record.last_seen),
            "idle_expires_at", _num(record.idle_expires_at), "max_expires_at", _num(record.max_expires_at),
            "turn_count", str(int(record.turn_count)), "input_tokens", str(int(record.input_tokens)),
            "output_tokens", str(int(record.output_tokens)),
        ]
        if record.ended_at is not None:
            fields += ["ended_at", _num(record.ended_at)]
            if record.end_reason is not None:
                fields += ["end_reason", record.end_reason]
        for field, value in _state_fields(record.state):
            fields += [field, value]
        due = min(record.idle_expires_at, record.max_expires_at)
        args = [record.id, _num(record.created_at), "" if record.ended_at is None else _num(record.ended_at),
                _num(due), _num(time.time()), _num(self._retention), *fields]
        keys = [self._s(record.id), self._t(record.id), self._k_active, self._k_created, self._k_ended]
        created = await self._call("create", lambda: self._create(keys=keys, args=args))
        if not created:
            raise SessionStoreError(f"Redis session store {self._where}: session {record.id!r} already exists")

    async def get(self, session_id: str) -> SessionRecord | None:
        fields = cast(dict[str, str], await self._call("get", lambda: self._redis.hgetall(self._s(session_id))))
        return _record(session_id, fields) if fields else None

    async def touch(self, session_id: str, now: float, idle_expires_at: float) -> SessionRecord | None:
        keys = [self._s(session_id), self._t(session_id), self._k_active]
        args = [session_id, _num(now), _num(idle_expires_at), _num(time.time()), _num(self._retention)]
        flat = await self._call("touch", lambda: self._touch(keys=keys, args=args))
        return None if flat is None else _record(session_id, _pairs(flat))

    async def append_turn(self, session_id: str, turn: Turn) -> Turn | None:
        body = turn.to_dict()
        del body["seq"]
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        keys = [self._s(session_id), self._t(session_id)]
        args = [text[1:], str(int(turn.input_tokens)), str(int(turn.output_tokens)), _num(time.time()),
                _num(self._retention)]
        seq = await self._call("append_turn", lambda: self._append(keys=keys, args=args))
        if seq is None:
            return None
        return Turn(
            tool=turn.tool, input=turn.input, output=turn.output, model=turn.model, started_at=turn.started_at,
            ended_at=turn.ended_at, input_tokens=turn.input_tokens, output_tokens=turn.output_tokens,
            seq=int(seq))

    async def history(self, session_id: str, *, last: int | None = None) -> list[Turn]:
        if last is not None and last <= 0:
            return []
        start = 0 if last is None else -last
        items = await self._call("history", lambda: self._redis.lrange(self._t(session_id), start, -1))
        return [Turn.from_dict(json.loads(item)) for item in items]

    async def set_state(
        self, session_id: str, values: dict[str, Any], remove: Sequence[str] = ()
    ) -> SessionRecord | None:
        pairs = _state_fields(values)
        args: list[str] = [str(len(pairs))]
        for field, value in pairs:
            args += [field, value]
        args += [_STATE + key for key in remove]
        flat = await self._call("set_state", lambda: self._set_state(keys=[self._s(session_id)], args=args))
        return None if flat is None else _record(session_id, _pairs(flat))

    async def end(self, session_id: str, now: float, reason: EndReason) -> SessionRecord | None:
        keys = [self._s(session_id), self._t(session_id), self._k_active, self._k_ended]
        args = [session_id, _num(now), reason, _num(time.time()), _num(self._retention)]
        flat = await self._call("end", lambda: self._end(keys=keys, args=args))
        return None if flat is None else _record(session_id, _pairs(flat))

    async def list(
        self, *, active: bool | None = None, owner: str | None = None, limit: int = 1000
    ) -> list[SessionRecord]:
        if limit <= 0:
            return []

        async def run() -> list[SessionRecord]:
            found: list[SessionRecord] = []
            seen: set[str] = set()  # sessions created meanwhile shift later pages
            start = 0
            page = max(_PAGE, limit) if active is None and owner is None else _PAGE
            while len(found) < limit:
                ids = cast(builtins.list[str], await self._redis.zrevrange(self._k_created, start, start + page - 1))
                if not ids:
                    break
                start += len(ids)
                async with self._redis.pipeline(transaction=False) as pipe:
                    for session_id in ids:
                        pipe.hgetall(self._s(session_id))
                    rows = cast(builtins.list[dict[str, str]], await pipe.execute())
                gone = []
                for session_id, fields in zip(ids, rows, strict=True):
                    if session_id in seen:
                        continue
                    seen.add(session_id)
                    if not fields:
                        gone.append(session_id)  # dropped by key expiry
                        continue
                    record = _record(session_id, fields)
                    if (owner is None or record.owner == owner) and (active is None or record.active == active):
                        found.append(record)
                if gone:
                    await self._redis.zrem(self._k_created, *gone)
                    start -= len(gone)
            return found[:limit]

        return await self._call("list", run)

    async def expire(self, now: float) -> builtins.list[str]:
        async def run() -> builtins.list[str]:
            ids = cast(builtins.list[str], await self._redis.zrangebyscore(self._k_active, "-inf", _num(now)))
            if not ids:
                return []
            keys = [self._k_active, self._k_ended, self._k_created]
            for session_id in ids:
                keys += [self._s(session_id), self._t(session_id)]
            args = [_num(now), _num(time.time()), _num(self._retention), *ids]
            return list(await self._expire(keys=keys, args=args))

        return await self._call("expire", run)

    async def purge(self, ended_before: float) -> int:
        async def run() -> int:
            if math.isnan(ended_before):
                return 0
            ids = cast(builtins.list[str],
                       await self._redis.zrangebyscore(self._k_ended, "-inf", "(" + _num(ended_before)))
            if not ids:
                return 0
            keys = [self._k_active, self._k_ended, self._k_created]
            for session_id in ids:
                keys += [self._s(session_id), self._t(session_id)]
            return int(await self._purge(keys=keys, args=[_num(ended_before), *ids]))

        return await self._call("purge", run)

    async def dispose_tool(self, tool: str, *, dry_run: bool = False) -> int:
        """Walks every session the `created` index knows, a page of turn lists per script call (each
        page atomic; LREM keeps each list's expiry)."""
        async def run() -> int:
            removed, start = 0, 0
            while True:
                ids = await self._redis.zrange(self._k_created, start, start + _PAGE - 1)
                if not ids:
                    return removed
                keys = [self._t(session_id) for session_id in ids]
                removed += int(await self._dispose(keys=keys, args=[tool, "1" if dry_run else "0"]))
                start += _PAGE

        return await self._call("dispose_tool", run)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._redis.aclose()
        except (RedisError, OSError):
            pass
