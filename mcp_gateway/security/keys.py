"""API keys: minted once, stored only as salted scrypt hashes in a JSON file.

A key reads `mgw_<id>_<secret>`: `id` is 16 hex digits and not secret (it names the key in listings,
logs and rate limits); `secret` is 48 hex digits (192 random bits). The store keeps, per key, the id,
name, scopes, optional rate limits and expiry, and `scrypt(secret, salt)` with a per-key random salt,
so a leaked file does not leak usable keys. Verification finds the record by the embedded id and
hashes once; the comparison is constant-time.

The hot path must not pay for scrypt on every request, so successful verifications are cached in
memory for `cache_ttl` seconds (30 by default), keyed by SHA-256 of the presented key (a fast hash is
safe here: the keys carry 192 random bits, and the cache never leaves the process). Consequences:

- `revoke()` in this process drops the key's cache entries at once;
- a revocation made by another process (e.g. the CLI) takes effect here within `cache_ttl`: once an
  entry expires, the next verification re-reads the file if its mtime or size changed.

Failed verifications of a well-formed key are cached too (`negative_ttl`), so a caller who knows a
key id cannot make the gateway run scrypt for every guess. Both caches are bounded LRUs.

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
from typing import Any

from .._errors import GatewayError
from .ratelimit import RateLimits

__all__ = [
    "KEY_PREFIX",
    "KeyRecord",
    "KeyStore",
    "KeyStoreError",
    "ScryptParams",
    "parse_key",
]

KEY_PREFIX = "mgw_"
_KEY_RE = re.compile(r"mgw_([0-9a-f]{16})_([0-9a-f]{48})")
_FORMAT_VERSION = 1


class KeyStoreError(GatewayError):
    """The key file cannot be read or written, or a request to change it is invalid."""


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt cost parameters, stored with each hash so they can be raised later without a migration."""

    n: int = 2**14
    r: int = 8
    p: int = 1

    def derive(self, secret: str, salt: bytes) -> bytes:
        return hashlib.scrypt(secret.encode(), salt=salt, n=self.n, r=self.r, p=self.p, dklen=32,
                              maxmem=256 * self.n * self.r)


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
class _Stored:
    record: KeyRecord
    salt: bytes
    digest: bytes
    params: ScryptParams


def parse_key(plaintext: str) -> tuple[str, str] | None:
    """`(key_id, secret)` of a well-formed key, else None."""
    match = _KEY_RE.fullmatch(plaintext)
    return (match.group(1), match.group(2)) if match else None


@dataclass(slots=True)
class _TTLCache:
    """A bounded LRU whose entries expire; not thread-safe on its own (the store holds a lock)."""

    maxsize: int
    ttl: float
    items: OrderedDict[bytes, tuple[float, KeyRecord | None]] = field(default_factory=OrderedDict)

    def get(self, key: bytes, now: float) -> tuple[bool, KeyRecord | None]:
        item = self.items.get(key)
        if item is None:
            return False, None
        if item[0] <= now:
            del self.items[key]
            return False, None
        self.items.move_to_end(key)
        return True, item[1]

    def put(self, key: bytes, value: KeyRecord | None, now: float) -> None:
        if self.ttl <= 0 or self.maxsize <= 0:
            return
        self.items[key] = (now + self.ttl, value)
        self.items.move_to_end(key)
        while len(self.items) > self.maxsize:
            self.items.popitem(last=False)

    def drop_key_id(self, key_id: str) -> None:
        stale = [k for k, (_, rec) in self.items.items() if rec is not None and rec.key_id == key_id]
        for cache_key in stale:
            del self.items[cache_key]

    def clear(self) -> None:
        self.items.clear()


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


def _to_json(item: _Stored) -> dict[str, Any]:
    rec = item.record
    return {
        "id": rec.key_id, "name": rec.name, "scopes": list(rec.scopes), "created_at": rec.created_at,
        "expires_at": rec.expires_at, "revoked_at": rec.revoked_at, "limits": _limits_to_json(rec.limits),
        "kdf": {"alg": "scrypt", "n": item.params.n, "r": item.params.r, "p": item.params.p,
                "salt": item.salt.hex()},
        "hash": item.digest.hex(),
    }


def _from_json(raw: dict[str, Any]) -> _Stored:
    kdf = raw["kdf"]
    if kdf.get("alg") != "scrypt":
        raise ValueError(f"unsupported kdf {kdf.get('alg')!r}")
    record = KeyRecord(
        key_id=str(raw["id"]), name=str(raw["name"]), scopes=tuple(str(s) for s in raw["scopes"]),
        created_at=float(raw["created_at"]), limits=_limits_from_json(raw.get("limits")),
        expires_at=raw.get("expires_at"), revoked_at=raw.get("revoked_at"))
    return _Stored(record, bytes.fromhex(kdf["salt"]), bytes.fromhex(raw["hash"]),
                   ScryptParams(int(kdf["n"]), int(kdf["r"]), int(kdf["p"])))


class KeyStore:
    """API keys in a JSON file; thread-safe; safe to share the file between processes."""

    def __init__(self, path: str | os.PathLike[str], *, params: ScryptParams | None = None,
                 cache_ttl: float = 30.0, negative_ttl: float = 5.0, cache_size: int = 4096,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.params = params or ScryptParams()
        self._clock = clock
        self._lock = threading.RLock()
        self._ok = _TTLCache(cache_size, cache_ttl)
        self._bad = _TTLCache(cache_size, negative_ttl)
        self._keys: dict[str, _Stored] = {}
        self._stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the file last read
        with self._lock:
            self._reload_if_changed()

    # -- reading ---------------------------------------------------------------------------------

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def _read_file(self) -> dict[str, _Stored]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise KeyStoreError(f"cannot read the key file {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
            if data.get("version") != _FORMAT_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            items = [_from_json(raw) for raw in data["keys"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyStoreError(f"the key file {self.path} is not a valid key file: {exc}") from None
        return {item.record.key_id: item for item in items}

    def _reload_if_changed(self) -> None:
        stamp = self._file_stamp()
        if stamp != self._stamp or stamp is None:
            self._keys = self._read_file()
            self._stamp = stamp

    # -- writing ---------------------------------------------------------------------------------

    @contextmanager
    def _locked_file(self) -> Iterator[None]:
        """Hold the cross-process lock, with the in-memory view freshly read from disk."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._keys = self._read_file()
            self._stamp = self._file_stamp()
            yield
        finally:
            os.close(fd)  # releases the flock

    def _write_file(self) -> None:
        body = {"version": _FORMAT_VERSION, "keys": [_to_json(item) for item in self._keys.values()]}
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
        self._stamp = self._file_stamp()

    # -- public API ------------------------------------------------------------------------------

    def create(self, name: str, scopes: Sequence[str], rate: RateLimits | None = None, *,
               expires_at: float | None = None) -> tuple[str, str]:
        """Mint a key. Returns `(key_id, plaintext)`: the plaintext is shown once and never stored."""
        if not name.strip():
            raise KeyStoreError("a key needs a non-empty name")
        if isinstance(scopes, str):
            raise KeyStoreError("scopes must be a list of strings, not one string")
        salt = secrets.token_bytes(16)
        secret = secrets.token_hex(24)
        digest = self.params.derive(secret, salt)
        with self._lock, self._locked_file():
            key_id = secrets.token_hex(8)
            while key_id in self._keys:
                key_id = secrets.token_hex(8)
            record = KeyRecord(key_id=key_id, name=name, scopes=tuple(scopes), created_at=self._clock(),
                               limits=rate, expires_at=expires_at)
            self._keys[key_id] = _Stored(record, salt, digest, self.params)
            self._write_file()
        return key_id, f"{KEY_PREFIX}{key_id}_{secret}"

    def list(self) -> list[KeyRecord]:
        """Every key, revoked ones included, oldest first; no secrets."""
        with self._lock:
            self._reload_if_changed()
            records = [item.record for item in self._keys.values()]
        return sorted(records, key=lambda r: (r.created_at, r.key_id))

    def get(self, key_id: str) -> KeyRecord | None:
        with self._lock:
            self._reload_if_changed()
            item = self._keys.get(key_id)
            return item.record if item else None

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke a key; effective at once in this process (see the module doc for other processes)."""
        with self._lock, self._locked_file():
            item = self._keys.get(key_id)
            if item is None:
                raise KeyStoreError(f"no API key with id '{key_id}'")
            if item.record.revoked_at is None:
                record = dataclasses.replace(item.record, revoked_at=self._clock())
                self._keys[key_id] = _Stored(record, item.salt, item.digest, item.params)
                self._write_file()
            self._ok.drop_key_id(key_id)
            return self._keys[key_id].record

    def cached(self, plaintext: str) -> KeyRecord | None:
        """The record of a key verified within the cache TTL and still active, else None (no scrypt)."""
        now = self._clock()
        with self._lock:
            hit, record = self._ok.get(_fast_hash(plaintext), now)
            return record if hit and record is not None and record.active(now) else None

    def verify(self, plaintext: str) -> KeyRecord | None:
        """The key's record if `plaintext` is a live key (not revoked, not expired), else None.

        Runs scrypt on a cache miss (tens of ms): async callers should call it in a worker thread
        after trying `cached()`.
        """
        if parse_key(plaintext) is None:
            return None
        now = self._clock()
        fast = _fast_hash(plaintext)
        with self._lock:
            hit, record = self._ok.get(fast, now)
            if hit and record is not None:
                return record if record.active(now) else None
            hit, _ = self._bad.get(fast, now)
            if hit:
                return None
            self._reload_if_changed()
        record = self._check(plaintext)
        with self._lock:
            if record is not None and record.active(now):
                self._ok.put(fast, record, now)
                return record
            self._bad.put(fast, None, now)
            return None

    def _check(self, plaintext: str) -> KeyRecord | None:
        parsed = parse_key(plaintext)
        assert parsed is not None
        key_id, secret = parsed
        with self._lock:
            item = self._keys.get(key_id)
        if item is None:
            return None
        digest = item.params.derive(secret, item.salt)
        return item.record if hmac.compare_digest(digest, item.digest) else None

    def clear_cache(self) -> None:
        with self._lock:
            self._ok.clear()
            self._bad.clear()


def _fast_hash(plaintext: str) -> bytes:
    return hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).digest()
