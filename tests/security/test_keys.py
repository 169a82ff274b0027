"""KeyStore: keys are shown once, stored hashed, verified cheaply for wrong guesses and with a
bounded cache, revoked at once."""

from __future__ import annotations

import hashlib
import json
import stat
import threading
from pathlib import Path

import pytest

from mcp_gateway.security import keys as keys_module
from mcp_gateway.security.keys import KeyStore, KeyStoreError, ScryptParams, parse_key
from mcp_gateway.security.ratelimit import RateLimits
from tests.security.support import CountingKdf

FAST = ScryptParams(n=2**10, r=8, p=1)  # tests only: production default is n=2**14


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_scrypt_seam_is_the_real_kdf(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The default seam is ScryptParams.derive, i.e. hashlib.scrypt."""
    calls: list[int] = []
    real = hashlib.scrypt

    def counting(*args: object, **kwargs: object) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(keys_module.hashlib, "scrypt", counting)
    store = KeyStore(tmp_path / "keys.json", params=FAST)
    _, plaintext = store.create("ci", [])
    assert store.verify(plaintext) is not None
    assert len(calls) == 2  # mint + first verification


def test_create_returns_plaintext_once_and_stores_only_a_salted_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    store = KeyStore(path, params=FAST)
    key_id, plaintext = store.create("ci", ["tools:*"], RateLimits(requests_per_minute=60))
    assert parse_key(plaintext) == (key_id, plaintext.rsplit("_", 1)[1])
    text = path.read_text()
    secret = plaintext.rsplit("_", 1)[1]
    assert secret not in text and plaintext not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = json.loads(text)["keys"][0]
    assert raw["kdf"]["alg"] == "scrypt" and len(bytes.fromhex(raw["kdf"]["salt"])) == 16
    # two keys never share a salt
    store.create("other", [])
    salts = {k["kdf"]["salt"] for k in json.loads(path.read_text())["keys"]}
    assert len(salts) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_verify_list_and_persisted_fields(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json", params=FAST)
    key_id, plaintext = store.create("ci", ["tools:summarize", "prompts:*"],
                                     RateLimits(requests_per_minute=10, max_concurrency=2))
    record = store.verify(plaintext)
    assert record is not None and record.key_id == key_id and record.principal == f"key:{key_id}"
    assert record.scopes == ("tools:summarize", "prompts:*")
    assert record.limits == RateLimits(requests_per_minute=10, max_concurrency=2)
    # a fresh store (another process) reads the same data back
    again = KeyStore(tmp_path / "keys.json", params=FAST)
    assert again.verify(plaintext) == record
    listed = again.list()
    assert [r.key_id for r in listed] == [key_id]
    assert "secret" not in repr(listed) and plaintext.rsplit("_", 1)[1] not in repr(listed)


@pytest.mark.parametrize("bad", ["", "mgw_", "mgw_zz_yy", "sk-123", "mgw_0123456789abcdef_" + "0" * 48])
def test_malformed_or_unknown_keys_are_refused(tmp_path: Path, bad: str) -> None:
    store = KeyStore(tmp_path / "keys.json", params=FAST)
    store.create("ci", [])
    assert store.verify(bad) is None


def test_wrong_secrets_for_a_known_id_never_run_scrypt(tmp_path: Path, kdf: CountingKdf) -> None:
    """The id is public: a guess `mgw_<id>_<random>` is refused by the keyed check, not by scrypt."""
    store = KeyStore(tmp_path / "keys.json", params=FAST, kdf=kdf)
    key_id, plaintext = store.create("ci", [])
    kdf.calls = 0
    for i in range(200):
        assert store.lookup(f"mgw_{key_id}_{i:048x}") == (True, None)
        assert store.verify(f"mgw_{key_id}_{i:048x}") is None
    assert kdf.calls == 0
    assert store.verify(plaintext) is not None  # the real key is unaffected
    assert kdf.calls == 1
    raw = json.loads((tmp_path / "keys.json").read_text())
    assert len(bytes.fromhex(raw["check_key"])) == 32 and len(bytes.fromhex(raw["keys"][0]["check"])) == 16


def test_keys_without_a_check_limit_failed_guesses_per_id(tmp_path: Path, kdf: CountingKdf) -> None:
    """Keys minted before checks existed: at most `legacy_failures` scrypt failures per id a minute."""
    path = tmp_path / "keys.json"
    clock = Clock()
    KeyStore(path, params=FAST).create("old", [])
    raw = json.loads(path.read_text())
    del raw["check_key"]
    del raw["keys"][0]["check"]
    path.write_text(json.dumps(raw))
    key_id = raw["keys"][0]["id"]
    store = KeyStore(path, params=FAST, kdf=kdf, legacy_failures=3, clock=clock)
    for i in range(50):
        assert store.verify(f"mgw_{key_id}_{i:048x}") is None
    assert kdf.calls == 3
    clock.now += 61
    assert store.verify(f"mgw_{key_id}_{99:048x}") is None
    assert kdf.calls == 4


def test_a_busy_key_stays_cached_and_an_idle_one_expires(tmp_path: Path, kdf: CountingKdf) -> None:
    """No hard expiry under use: the entry lives `cache_ttl` after its last use."""
    clock = Clock()
    store = KeyStore(tmp_path / "keys.json", params=FAST, cache_ttl=30, clock=clock, kdf=kdf)
    _, plaintext = store.create("ci", [])
    kdf.calls = 0
    for _ in range(10):  # used every 20 s for 200 s
        assert store.verify(plaintext) is not None
        clock.now += 20
    assert kdf.calls == 1
    clock.now += 31
    assert store.lookup(plaintext) == (False, None)  # idle past the TTL: must be proved again
    assert store.verify(plaintext) is not None
    assert kdf.calls == 2


def test_revoke_in_process_takes_effect_at_once(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json", params=FAST)
    key_id, plaintext = store.create("ci", [])
    assert store.verify(plaintext) is not None  # now cached
    revoked = store.revoke(key_id)
    assert revoked.revoked_at is not None
    assert store.lookup(plaintext) == (True, None)
    assert store.verify(plaintext) is None
    assert store.get(key_id) is not None and store.get(key_id).revoked_at is not None  # type: ignore[union-attr]
    with pytest.raises(KeyStoreError, match="no API key with id"):
        store.revoke("0000000000000000")


def test_revoke_and_create_by_another_process_take_effect_within_refresh_s(tmp_path: Path,
                                                                           kdf: CountingKdf) -> None:
    clock = Clock()
    server = KeyStore(tmp_path / "keys.json", params=FAST, refresh_s=1.0, clock=clock, kdf=kdf)
    key_id, plaintext = server.create("ci", [])
    assert server.verify(plaintext) is not None
    cli = KeyStore(tmp_path / "keys.json", params=FAST)
    cli.revoke(key_id)
    _, fresh = cli.create("new", [])
    clock.now += 1.0
    assert server.verify(plaintext) is None  # the file was re-read: revoked although cached
    assert server.verify(fresh) is not None  # and the key minted elsewhere is known


def test_a_corrupt_file_while_serving_keeps_the_last_good_table(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    path = tmp_path / "keys.json"
    store = KeyStore(path, params=FAST, clock=clock)
    _, plaintext = store.create("ci", [])
    path.write_text("{broken")
    clock.now += 2
    assert store.verify(plaintext) is not None
    assert "keeping the last good key table" in caplog.text


def test_expired_keys_are_refused(tmp_path: Path) -> None:
    clock = Clock()
    store = KeyStore(tmp_path / "keys.json", params=FAST, clock=clock)
    _, plaintext = store.create("temp", [], expires_at=clock.now + 60)
    assert store.verify(plaintext) is not None
    clock.now += 61
    assert store.lookup(plaintext) == (True, None)
    assert store.verify(plaintext) is None


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    stores = [KeyStore(path, params=FAST) for _ in range(4)]  # four "processes"
    created: list[str] = []
    lock = threading.Lock()

    def work(store: KeyStore) -> None:
        for i in range(5):
            key_id, _ = store.create(f"k{i}", [])
            with lock:
                created.append(key_id)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.key_id for r in KeyStore(path, params=FAST).list()) == sorted(created)
    assert len(created) == 20


def test_invalid_input_and_corrupt_file(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json", params=FAST)
    with pytest.raises(KeyStoreError, match="non-empty name"):
        store.create(" ", [])
    with pytest.raises(KeyStoreError, match="list of strings"):
        store.create("x", "tools:*")  # type: ignore[arg-type]
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(KeyStoreError, match="not a valid key file"):
        KeyStore(tmp_path / "bad.json")
