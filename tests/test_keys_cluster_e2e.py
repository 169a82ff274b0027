"""Two gateway processes sharing API keys through a real redis-server: a key created or revoked
with the CLI is accepted or refused by both, pushed by pub/sub; a Redis outage keeps known keys
working, makes `keys revoke` fail clearly, and recovers without a restart."""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx2

from tests.conftest import http_gateway
from tests.redis_server import RedisServer

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def write_config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent(f"""
        format: mcp-gateway/1
        providers: {{offline: {{kind: mock}}}}
        models: {{m: {{provider: offline, model: mock-1}}}}
        tools:
          - {{name: t, description: T., model: m, messages: [{{role: user, content: hi}}]}}
        auth:
          keys_redis: {{url: "{url}", prefix: "k{secrets.token_hex(4)}:"}}
    """))
    return path


def keys_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcp_gateway", "keys", *args[:1], str(config), *args[1:]],
                          capture_output=True, text=True, timeout=60)


def status(base_url: str, key: str) -> int:
    return httpx2.post(base_url + "/mcp", json=INIT, headers={**ACCEPT, "Authorization": f"Bearer {key}"},
                       timeout=10).status_code


def until_every(bases: list[str], key: str, wanted: int, limit: float = 30.0) -> None:
    """Wait until every gateway answers `key` with `wanted` (`limit` only guards against a hang)."""
    started = time.monotonic()
    pending = set(bases)
    while pending:
        pending = {b for b in pending if status(b, key) != wanted}
        assert time.monotonic() - started < limit, f"still not {wanted} after {limit} s"


def test_key_creation_and_revocation_reach_every_process(tmp_path: Path, redis_url: str) -> None:
    # They arrive by pub/sub (or the 1 s refresh); how fast is a benchmark's question, not a test's.
    config = write_config(tmp_path, redis_url)
    with http_gateway(config) as one, http_gateway(config) as two:
        created = keys_cli(config, "create", "--name", "ci", "--scope", "tools:*")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        until_every([one.base_url, two.base_url], key, 200)
        key_id = key.split("_")[1]
        revoked = keys_cli(config, "revoke", key_id)
        assert revoked.returncode == 0, revoked.stderr
        until_every([one.base_url, two.base_url], key, 401)


def test_a_redis_outage_keeps_known_keys_and_fails_changes_clearly(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis", persistent=True)
    redis.start()
    try:
        config = write_config(tmp_path, redis.url)
        key = keys_cli(config, "create", "--name", "ci", "--scope", "tools:*").stdout.strip()
        with http_gateway(config) as one, http_gateway(config) as two:
            until_every([one.base_url, two.base_url], key, 200)
            redis.stop(kill=True)
            assert status(one.base_url, key) == 200 and status(two.base_url, key) == 200
            failed = keys_cli(config, "revoke", key.split("_")[1])
            assert failed.returncode == 1 and "cannot change the Redis key store at 127.0.0.1" in failed.stderr
            assert "Traceback" not in failed.stderr
            redis.start()
            assert keys_cli(config, "revoke", key.split("_")[1]).returncode == 0
            until_every([one.base_url, two.base_url], key, 401)  # pub/sub re-subscribed, or the refresh
            started = time.monotonic()  # the watcher may re-subscribe after a refresh saw the revocation
            while "is back" not in "".join(one.log):
                assert time.monotonic() - started < 30, "".join(one.log)
                time.sleep(0.05)
            assert "is unreachable" in "".join(one.log)
    finally:
        redis.stop()
