"""The key table in Redis, shared by every gateway process of a cluster (and by `mcp-gateway keys`).

Layout under a prefix (default `mgw:keys:`): `table`, a hash of key id -> the same JSON record the
file keeps (salted scrypt hash and keyed check, never a secret); `check_key`, the store's HMAC key;
`version`, a counter bumped by every change; and the pub/sub channel `changed`, told the new
version. Writers change the hash, the version and publish in one MULTI under WATCH of the version,
so concurrent CLI runs never lose each other's changes (the loser is told to try again).

Serving processes do not read Redis on the request path: `notices()` (run by the server's
lifespan, see `KeyStore.watch`) wakes on every change message, and at least every `interval`
seconds, and the store re-reads the table in a worker thread when the version moved. A revocation
or a new key therefore reaches every process as fast as pub/sub delivers (milliseconds), and within
`interval` (1 s) if a message was lost.

Proofs are shared too: once a process has run scrypt for a presented key, it stores
`proved:<HMAC(check_key, token)>` for `proof_ttl` seconds, and other processes accept a token whose
check matches and whose proof is there without running scrypt themselves. The entry is useless
without the token itself.

Redis down: serving processes keep the last table they read (so revocations made before the outage
hold, and none can be made during it), log a warning, and fall back to scrypt for new proofs;
`mcp-gateway keys` fails with a clear error. A process started while Redis is down starts with no
keys (every key is refused, with a warning) and loads the table as soon as Redis answers.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

import anyio

from .keys import KeyStoreError, KeyTable, StoredKey, key_from_json, key_to_json

if TYPE_CHECKING:
    import redis

__all__ = ["RedisKeyBackend"]

log = logging.getLogger("mcp_gateway.keys")


class RedisKeyBackend:
    """A `KeyBackend` in Redis; see the module doc."""

    inline_refresh = False  # never block the event loop on Redis: `notices()` drives refreshes
    required_at_start = False

    def __init__(self, url: str, *, prefix: str = "mgw:keys:", proof_ttl: float = 3600.0,
                 socket_timeout: float = 2.0) -> None:
        import redis as redis_sync

        self.url = url
        self.prefix = prefix
        self.proof_ttl = proof_ttl
        self._socket_timeout = socket_timeout
        self._client: redis.Redis = redis_sync.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)
        self._where = _where(url)

    def __str__(self) -> str:
        return f"Redis key store at {self._where}"

    def _k(self, name: str) -> str:
        return self.prefix + name

    def _failed(self, doing: str, exc: BaseException) -> KeyStoreError:
        return KeyStoreError(f"cannot {doing} the Redis key store at {self._where}: {type(exc).__name__}")

    # -- the KeyBackend protocol ---------------------------------------------------------------------

    def load(self, version: object | None) -> tuple[object, KeyTable] | None:
        from redis.exceptions import RedisError

        try:
            current = self._client.get(self._k("version"))
            if version is not None and current == version:
                return None
            with self._client.pipeline(transaction=True) as pipe:
                pipe.get(self._k("version")).hgetall(self._k("table")).get(self._k("check_key"))
                current, raw, check_key = pipe.execute()
        except (RedisError, OSError) as exc:
            raise self._failed("read", exc) from None
        try:
            keys = {k.decode(): key_from_json(json.loads(v)) for k, v in raw.items()}
            table = KeyTable(keys, bytes.fromhex(check_key.decode()) if check_key else None)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyStoreError(f"the Redis key store at {self._where} holds an invalid record: {exc}") from None
        return current, table

    @contextlib.contextmanager
    def edit(self) -> Iterator[tuple[KeyTable, Callable[[], object]]]:
        from redis.exceptions import RedisError, WatchError

        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.watch(self._k("version"))
                loaded = self.load(None)
                assert loaded is not None
                _, table = loaded
                before = {key_id: key_to_json(item) for key_id, item in table.keys.items()}
                had_check_key = table.check_key is not None

                def save() -> object:
                    pipe.multi()
                    for key_id, item in table.keys.items():
                        raw = key_to_json(item)
                        if before.get(key_id) != raw:
                            pipe.hset(self._k("table"), key_id, json.dumps(raw, sort_keys=True))
                    if not had_check_key and table.check_key is not None:
                        pipe.set(self._k("check_key"), table.check_key.hex())
                    pipe.incr(self._k("version"))
                    results = pipe.execute()
                    version = str(results[-1]).encode()
                    self._client.publish(self._k("changed"), version)
                    return version

                yield table, save
        except WatchError:
            raise KeyStoreError(f"the Redis key store at {self._where} changed meanwhile; try again") from None
        except (RedisError, OSError) as exc:
            raise self._failed("change", exc) from None

    # -- shared proofs ---------------------------------------------------------------------------------

    def _proof_key(self, check_key: bytes, plaintext: str) -> str:
        mac = hmac.new(check_key, b"proof:" + plaintext.encode(), hashlib.sha256).hexdigest()
        return self._k("proved:" + mac)

    def was_proved(self, check_key: bytes, plaintext: str, item: StoredKey) -> bool:
        """True if another process proved this very token against this very record (best effort)."""
        try:
            stored = self._client.get(self._proof_key(check_key, plaintext))
        except Exception:  # Redis down: prove it here instead
            return False
        return stored is not None and hmac.compare_digest(stored, item.digest.hex().encode())

    def remember_proof(self, check_key: bytes, plaintext: str, item: StoredKey) -> None:
        try:
            self._client.set(self._proof_key(check_key, plaintext), item.digest.hex(), ex=max(1, int(self.proof_ttl)))
        except Exception:
            log.debug("could not share a key proof (Redis unavailable)")

    # -- change notices --------------------------------------------------------------------------------

    async def notices(self, interval: float) -> AsyncIterator[None]:
        """Yield on every change message and at least every `interval` seconds, for ever; survives
        Redis outages (reconnects quietly, one warning per outage)."""
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError

        down = False
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=self._socket_timeout)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self._k("changed"))
                    if down:
                        log.warning("the Redis key store at %s is back", self._where)
                        down = False
                    yield None  # (re)subscribed: catch up on anything missed meanwhile
                    while True:
                        await pubsub.get_message(ignore_subscribe_messages=True, timeout=interval)
                        yield None
            except (RedisError, OSError) as exc:
                if not down:
                    log.warning("the Redis key store at %s is unreachable (%s): serving the keys last read",
                                self._where, type(exc).__name__)
                    down = True
                yield None
                await anyio.sleep(interval)
            finally:
                with anyio.CancelScope(shield=True):
                    await client.aclose()

    def close(self) -> None:
        self._client.close()


def _where(url: str) -> str:
    """host:port/db of a Redis URL, without credentials."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or ''}"
