"""`serve` does its providers' one-time set-up as it starts, over stdio and HTTP, before any call
(tests/providers/test_warm_up.py shows that the first call then builds nothing of its own)."""

from __future__ import annotations

import subprocess
import textwrap
import threading
from pathlib import Path

from tests.conftest import http_gateway, serve_command, wait_for_log

# The provider is never called here, so nothing needs to listen at its address.
CONFIG = textwrap.dedent("""
    format: mcp-gateway/1
    providers:
      llm: {kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: "${env:WARM_UP_TEST_KEY}"}
    models: {default: {provider: llm, model: gpt-4o-mini}}
    tools:
      - {name: greet, description: Greet the team., model: default, input_schema: {type: object},
         messages: [{role: user, content: "Say hello to the team."}]}
""")
READY = "provider llm: ready"


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    return path


def test_stdio_serve_prepares_its_providers_before_any_call(tmp_path, monkeypatch):
    monkeypatch.setenv("WARM_UP_TEST_KEY", "sk-warm-up-test-key")
    proc = subprocess.Popen(
        [*serve_command(_config(tmp_path)), "--log-level", "debug"],  # the last --log-level wins
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    log: list[str] = []

    def drain() -> None:
        assert proc.stderr is not None
        log.extend(proc.stderr)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        wait_for_log(log, READY, timeout=60)  # nothing was sent: no call can have done it
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the client leaves: the server ends
        assert proc.wait(timeout=30) == 0
        reader.join(timeout=10)
    assert proc.stdout is not None and proc.stdout.read() == ""  # stdout carries protocol only
    assert not any("sk-warm-up-test-key" in line for line in log)


def test_http_serve_prepares_its_providers_before_any_call(tmp_path, monkeypatch):
    monkeypatch.setenv("WARM_UP_TEST_KEY", "sk-warm-up-test-key")
    with http_gateway(_config(tmp_path), "--log-level", "debug") as server:
        wait_for_log(server.log, READY, timeout=60)
    assert not any("sk-warm-up-test-key" in line for line in server.log)
