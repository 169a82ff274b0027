"""API keys: minted once, stored only as salted scrypt hashes plus a keyed check, in a JSON file.

A key reads `mgw_<id>_<secret>`: `id` is 16 hex digits and not secret (it names the key in listings,
logs and rate limits); `secret` is 48 hex digits (192 random bits). The store keeps, per key, the id,
name, scopes, optional rate limits and expiry, `scrypt(secret, salt)` with a per-key random salt,
and a *check*: `HMAC-SHA256(store key, secret)` cut to 16 bytes, where the store key is 32 random
bytes kept in the same file. A leaked file does not leak usable keys: the secret has 192 random
bits, so neither the check nor the scrypt hash can be searched.

Why the check: a key id is public, so anyone can send `mgw_<known id>_<guess>`. Without it every
guess costs a full scrypt (16 MiB, tens of ms); with it a wrong guess costs one HMAC and is refused
before scrypt runs. Only a presented key whose check matches reaches scrypt, at most once at a time
per presented key (`SingleFlight` in the async verifier) and at most `kdf_concurrency` at once in a
process. Keys minted before checks existed have none: for them a per-key-id failure limit
(`legacy_failures` scrypt failures per minute) bounds what guesses cost; re-create such keys.

Successful verifications are remembered (an LRU keyed by SHA-256 of the presented key; safe, the
keys carry 192 random bits and the cache never leaves the process) for `cache_ttl` seconds after
their *last* use, so a busy key never falls out. The cache remembers only which key a token proved;
whether that key is still active is read from the key table on every hit, and the table is re-read
when the file changes (checked at most every `refresh_s` seconds, 1 by default). So:

- `revoke()` in this process takes effect at once;
- a revocation or a new key written by another process (the CLI) takes effect here within
  `refresh_s`.

File writes take an exclusive `flock` on `<file>.lock`, re-read the file, change it and replace it
atomically (temp file + fsync + rename, mode 0600): concurrent CLI and server processes never lose
each other's changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread

from .._errors import GatewayError
from .ratelimit import RateLimits

__all__ = [
    "KEY_PREFIX",
    "FileKeyBackend",
    "KeyBackend",
    "KeyRecord",
    "KeyStore",
    "KeyStoreError",
    "KeyTable",
    "ScryptParams",
    "parse_key",
]

log = logging.getLogger("mcp_gateway.keys")

KEY_PREFIX = "mgw_"
_KEY_RE = re.compile(r"mgw_([0-9a-f]{16})_([0-9a-f]{48})")
_FORMAT_VERSION = 1
_CHECK_BYTES = 16


class KeyStoreError(GatewayError):
    """The key store cannot be read or written, or a request to change it is invalid."""


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost parameters, stored with each hash so they can be raised later without a migration."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    def derive(self, secret: str, salt: bytes) -> bytes:
        return hashlib.scrypt(secret.encode(), salt=salt, n=self.n, r=self.r, p=self.p, dklen=32,
                              maxmem=256 * self.n * self.r)


Kdf = Callable[[ScryptParams, str, bytes], bytes]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What the gateway knows about a key; never holds the secret or its hash."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    limits: RateLimits | None = None
    expires_at: float | None = None
    revoked_at: float | None = None

    @property
    def principal(self) -> str:
        """The principal requests made with this key act as (prefixed so it cannot clash with a JWT `sub`)."""
        return f"key:{self.key_id}"

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class StoredKey:
    record: KeyRecord
    salt: bytes
    digest: bytes
    params: ScryptParams
    check: bytes | None = None  # None: minted before checks existed


@dataclass(slots=True)
class KeyTable:
    """Every key of a store, and the store's HMAC key for checks (None until the first key is minted)."""

    keys: dict[str, StoredKey] = field(default_factory=dict)
    check_key: bytes | None = None


class KeyBackend(Protocol):
    """Where a key table lives. `load` is cheap when nothing changed; `edit` is atomic across processes.

    `inline_refresh`: `load` is cheap enough for the request path (a file's stat); otherwise the
    server runs `KeyStore.watch()`, driven by the backend's `notices()`.
    `required_at_start`: a store that cannot be read at start-up is a config error (else: a warning).
    """

    inline_refresh: bool
    required_at_start: bool

    def load(self, version: object | None) -> tuple[object, KeyTable] | None:
        """The table and its version, or None if `version` is still current."""
        ...

    def edit(self) -> contextlib.AbstractContextManager[tuple[KeyTable, Callable[[], object]]]:
        """A fresh table to change, and a `save()` that stores it and returns the new version."""
        ...


def parse_key(plaintext: str) -> tuple[str, str] | None:
    """`(key_id, secret)` of a well-formed key, else None."""
    match = _KEY_RE.fullmatch(plaintext)
    return (match.group(1), match.group(2)) if match else None


def key_check(check_key: bytes, secret: str) -> bytes:
    """The keyed check of a secret: cheap to compute, useless without the store key and the secret."""
    return hmac.new(check_key, secret.encode(), hashlib.sha256).digest()[:_CHECK_BYTES]


@dataclass(slots=True)
class _LRU:
    """A bounded LRU whose entries expire `ttl` seconds after their last use; guarded by the store's lock."""

    maxsize: int
    ttl: float
    items: OrderedDict[bytes, tuple[float, bytes]] = field(default_factory=OrderedDict)

    def get(self, key: bytes, now: float) -> bytes | None:
        item = self.items.get(key)
        if item is None:
            return None
        if item[0] <= now:
            del self.items[key]
            return None
        self.items[key] = (now + self.ttl, item[1])
        self.items.move_to_end(key)
        return item[1]

    def put(self, key: bytes, value: bytes, now: float) -> None:
        if self.ttl <= 0 or self.maxsize <= 0:
            return
        self.items[key] = (now + self.ttl, value)
        self.items.move_to_end(key)
        while len(self.items) > self.maxsize:
            self.items.popitem(last=False)

    def clear(self) -> None:
        self.items.clear()


# -- the JSON file ---------------------------------------------------------------------------------


def _limits_to_json(limits: RateLimits | None) -> dict[str, int] | None:
    if limits is None:
        return None
    raw = {"requests_per_minute": limits.requests_per_minute, "tokens_per_minute": limits.tokens_per_minute,
           "max_concurrency": limits.max_concurrency}
    return {k: v for k, v in raw.items() if v is not None}


def _limits_from_json(raw: Any) -> RateLimits | None:
    if raw is None:
        return None
    return RateLimits(requests_per_minute=raw.get("requests_per_minute"),
                      tokens_per_minute=raw.get("tokens_per_minute"),
                      max_concurrency=raw.get("max_concurrency"))


def key_to_json(item: StoredKey) -> dict[str, Any]:
    rec = item.record
    raw: dict[str, Any] = {
        "id": rec.key_id, "name": rec.name, "scopes": list(rec.scopes), "created_at": rec.created_at,
        "expires_at": rec.expires_at, "revoked_at": rec.revoked_at, "limits": _limits_to_json(rec.limits),
        "kdf": {"alg": "scrypt", "n": item.params.n, "r": item.params.r, "p": item.params.p,
                "salt": item.salt.hex()},
        "hash": item.digest.hex(),
    }
    if item.check is not None:
        raw["check"] = item.check.hex()
    return raw


def key_from_json(raw: dict[str, Any]) -> StoredKey:
    kdf = raw["kdf"]
    if kdf.get("alg") != "scrypt":
        raise ValueError(f"unsupported kdf {kdf.get('alg')!r}")
    record = KeyRecord(
        key_id=str(raw["id"]), name=str(raw["name"]), scopes=tuple(str(s) for s in raw["scopes"]),
        created_at=float(raw["created_at"]), limits=_limits_from_json(raw.get("limits")),
        expires_at=raw.get("expires_at"), revoked_at=raw.get("revoked_at"))
    check = bytes.fromhex(raw["check"]) if raw.get("check") else None
    return StoredKey(record, bytes.fromhex(kdf["salt"]), bytes.fromhex(raw["hash"]),
                     ScryptParams(int(kdf["n"]), int(kdf["r"]), int(kdf["p"])), check)


class FileKeyBackend:
    """The key table in one JSON file (mode 0600), changed under an exclusive `flock`."""

    inline_refresh = True
    required_at_start = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def _read(self) -> KeyTable:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return KeyTable()
        except OSError as exc:
            raise KeyStoreError(f"cannot read the key file {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
            if data.get("version") != _FORMAT_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            items = [key_from_json(raw) for raw in data["keys"]]
            check_key = bytes.fromhex(data["check_key"]) if data.get("check_key") else None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyStoreError(f"the key file {self.path} is not a valid key file: {exc}") from None
        return KeyTable({item.record.key_id: item for item in items}, check_key)

    def load(self, version: object | None) -> tuple[object, KeyTable] | None:
        stamp = self._stamp()
        if stamp is not None and stamp == version:
            return None
        return stamp, self._read()

    @contextmanager
    def edit(self) -> Iterator[tuple[KeyTable, Callable[[], object]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            table = self._read()
            yield table, lambda: self._write(table)
        finally:
            os.close(fd)  # releases the flock

    def _write(self, table: KeyTable) -> object:
        body: dict[str, Any] = {"version": _FORMAT_VERSION, "keys": [key_to_json(item) for item in table.keys.values()]}
        if table.check_key is not None:
            body["check_key"] = table.check_key.hex()
        data = (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()
        fd, tmp = tempfile.mkstemp(prefix=self.path.name + ".", suffix=".tmp", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return self._stamp()


# -- the store -------------------------------------------------------------------------------------


class KeyStore:
    """API keys in a `KeyBackend` (a JSON file by default); thread-safe; safe to share between processes."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, backend: KeyBackend | None = None,
                 params: ScryptParams | None = None, cache_ttl: float = 3600.0, refresh_s: float = 1.0,
                 negative_ttl: float = 5.0, cache_size: int = 4096, kdf_concurrency: int = 2,
                 legacy_failures: int = 10, clock: Callable[[], float] = time.time,
                 kdf: Kdf = ScryptParams.derive) -> None:
        if backend is None:
            if path is None:
                raise ValueError("KeyStore needs a path or a backend")
            backend = FileKeyBackend(path)
        self.backend = backend
        self.params = params or ScryptParams()
        self.refresh_s = refresh_s
        self._clock = clock
        self._kdf = kdf
        self._lock = threading.RLock()
        self._kdf_slots = threading.BoundedSemaphore(max(1, kdf_concurrency))
        self._ok = _LRU(cache_size, cache_ttl)
        self._bad = _LRU(cache_size, negative_ttl)
        self._legacy_limit = legacy_failures
        self._legacy_failed: dict[str, list[float]] = {}
        self._table = KeyTable()
        self._version: object | None = None
        self._checked_at = float("-inf")
        try:
            self._reload()
        except KeyStoreError as exc:
            if backend.required_at_start:
                raise
            log.warning("starting with no API keys until the key store answers: %s", exc)

    # -- reading ---------------------------------------------------------------------------------

    def _reload(self) -> None:
        with self._lock:
            version = self._version
        loaded = self.backend.load(version)  # I/O outside the lock: lookups never wait for it
        if loaded is not None:
            with self._lock:
                self._version, self._table = loaded

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the table if it changed (at most every `refresh_s`, unless `force`). A table that
        cannot be read while serving keeps the last good one, with a warning."""
        now = self._clock()
        with self._lock:
            if not force and now - self._checked_at < self.refresh_s:
                return
            self._checked_at = now
        try:
            self._reload()
        except KeyStoreError as exc:
            log.warning("keeping the last good key table: %s", exc)

    async def watch(self) -> None:
        """Keep the table current for a backend that is not polled on the request path (Redis):
        re-read on every change notice. Runs until cancelled; a no-op for a file."""
        notices = getattr(self.backend, "notices", None)
        if self.backend.inline_refresh or notices is None:
            return
        async for _ in notices(self.refresh_s):
            await anyio.to_thread.run_sync(lambda: self.refresh(force=True))

    # -- writing ---------------------------------------------------------------------------------

    def create(self, name: str, scopes: Sequence[str], rate: RateLimits | None = None, *,
               expires_at: float | None = None) -> tuple[str, str]:
        """Mint a key. Returns `(key_id, plaintext)`: the plaintext is shown once and never stored."""
        if not name.strip():
            raise KeyStoreError("a key needs a non-empty name")
        if isinstance(scopes, str):
            raise KeyStoreError("scopes must be a list of strings, not one string")
        salt = secrets.token_bytes(16)
        secret = secrets.token_hex(24)
        digest = self._kdf(self.params, secret, salt)
        with self._lock, self.backend.edit() as (table, save):
            if table.check_key is None:
                table.check_key = secrets.token_bytes(32)
            key_id = secrets.token_hex(8)
            while key_id in table.keys:
                key_id = secrets.token_hex(8)
            record = KeyRecord(key_id=key_id, name=name, scopes=tuple(scopes), created_at=self._clock(),
                               limits=rate, expires_at=expires_at)
            table.keys[key_id] = StoredKey(record, salt, digest, self.params, key_check(table.check_key, secret))
            self._version, self._table = save(), table
        return key_id, f"{KEY_PREFIX}{key_id}_{secret}"

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke a key; effective at once in this process, within `refresh_s` in others."""
        with self._lock, self.backend.edit() as (table, save):
            item = table.keys.get(key_id)
            if item is None:
                raise KeyStoreError(f"no API key with id '{key_id}'")
            if item.record.revoked_at is None:
                record = dataclasses.replace(item.record, revoked_at=self._clock())
                table.keys[key_id] = dataclasses.replace(item, record=record)
                self._version = save()
            self._table = table
            return table.keys[key_id].record

    def list(self) -> list[KeyRecord]:
        """Every key, revoked ones included, oldest first; no secrets."""
        self.refresh(force=True)
        with self._lock:
            records = [item.record for item in self._table.keys.values()]
        return sorted(records, key=lambda r: (r.created_at, r.key_id))

    def get(self, key_id: str) -> KeyRecord | None:
        """The record as of the last refresh (no I/O: called on every request)."""
        with self._lock:
            item = self._table.keys.get(key_id)
            return item.record if item else None

    # -- verification ----------------------------------------------------------------------------

    def lookup(self, plaintext: str) -> tuple[bool, KeyRecord | None]:
        """Everything that needs no scrypt: `(True, record or None)` when settled, `(False, None)`
        when only `prove()` can tell (a check that matched, or a key without a check)."""
        parsed = parse_key(plaintext)
        if parsed is None:
            return True, None
        key_id, secret = parsed
        if self.backend.inline_refresh:
            self.refresh()
        now = self._clock()
        fast = _fast_hash(plaintext)
        with self._lock:
            item = self._table.keys.get(key_id)
            if item is None or not item.record.active(now):
                return True, None
            proved = self._ok.get(fast, now)
            if proved is not None and hmac.compare_digest(proved, item.digest):
                return True, item.record
            if self._bad.get(fast, now) is not None:
                return True, None
            if item.check is not None and self._table.check_key is not None:
                if not hmac.compare_digest(key_check(self._table.check_key, secret), item.check):
                    return True, None
                return False, None
            failures = self._legacy_failed.get(key_id)
            if failures is not None and len([t for t in failures if t > now - 60]) >= self._legacy_limit:
                return True, None
            return False, None

    def prove(self, plaintext: str) -> KeyRecord | None:
        """Run scrypt for a key `lookup()` could not settle (blocking, tens of ms; use a worker thread)."""
        parsed = parse_key(plaintext)
        if parsed is None:
            return None
        key_id, secret = parsed
        with self._lock:
            item = self._table.keys.get(key_id)
            check_key = self._table.check_key
        if item is None:
            return None
        shared = check_key is not None and item.check is not None and hasattr(self.backend, "was_proved")
        if shared and self.backend.was_proved(check_key, plaintext, item):  # type: ignore[attr-defined]
            digest = item.digest  # lookup() matched the check; another process ran scrypt for this token
        else:
            with self._kdf_slots:
                digest = self._kdf(item.params, secret, item.salt)
            if shared and hmac.compare_digest(digest, item.digest):
                self.backend.remember_proof(check_key, plaintext, item)  # type: ignore[attr-defined]
        now = self._clock()
        fast = _fast_hash(plaintext)
        with self._lock:
            if not hmac.compare_digest(digest, item.digest):
                self._bad.put(fast, b"", now)
                if item.check is None:
                    self._note_legacy_failure(key_id, now)
                return None
            self._ok.put(fast, item.digest, now)
            current = self._table.keys.get(key_id)
            ok = current is not None and current.digest == item.digest and current.record.active(now)
            return current.record if ok and current is not None else None

    def verify(self, plaintext: str) -> KeyRecord | None:
        """The key's record if `plaintext` is a live key (not revoked, not expired), else None."""
        settled, record = self.lookup(plaintext)
        return record if settled else self.prove(plaintext)

    def _note_legacy_failure(self, key_id: str, now: float) -> None:
        recent = [t for t in self._legacy_failed.get(key_id, ()) if t > now - 60]
        recent.append(now)
        self._legacy_failed[key_id] = recent[-self._legacy_limit:]
        if len(self._legacy_failed) > 4096:
            for stale in [k for k, ts in self._legacy_failed.items() if ts[-1] <= now - 60]:
                del self._legacy_failed[stale]

    def close(self) -> None:
        """Release the backend's connections (a file holds none)."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    def clear_cache(self) -> None:
        with self._lock:
            self._ok.clear()
            self._bad.clear()


def _fast_hash(plaintext: str) -> bytes:
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).digest()
