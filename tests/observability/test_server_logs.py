"""A served gateway's stderr with JSON logs on: every line is JSON (uvicorn's own loggers included),
and clients that hang up mid-upload or send a bad Host to /sse cost one line each, no traceback."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx2

from tests.conftest import EXAMPLE, http_gateway, wait_for_log


def test_json_logs_cover_uvicorn_and_client_aborts_have_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(EXAMPLE.read_text() + "\nobservability: {json_logs: true}\n")
    for item in ("prompts", "docs", "tools"):
        shutil.copytree(EXAMPLE.parent / item, tmp_path / item)
    with http_gateway(config) as server:
        host, port = urlsplit(server.base_url).hostname, urlsplit(server.base_url).port
        assert httpx2.get(server.base_url + "/sse", headers={"Host": "evil.example"}).status_code == 421
        for path in ("/mcp", "/messages/?session_id=0123456789abcdef0123456789abcdef"):
            with socket.create_connection((host, port)) as sock:  # promise 100 kB, send 1 kB, hang up
                sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                             "Accept: application/json, text/event-stream\r\nContent-Length: 100000\r\n\r\n"
                             .encode() + b"{" * 1000)
        wait_for_log(server.log, "the client disconnected")
        wait_for_log(server.log, "Host 'evil.example' is not allowed")
        called = httpx2.post(server.base_url + "/v1/tools/summarize", json={"text": "Ada wrote notes."},
                             headers={"X-Request-ID": "probe-123"}, timeout=30)
        assert called.status_code == 200, called.text
        wait_for_log(server.log, "tool=summarize")
    lines = [line for line in server.log if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert not [r for r in records if "exc" in r], "a traceback was logged"
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's own loggers go through ours
    assert not any("Traceback" in line or "ERROR" in line for line in lines)
    # The call's line carries the request id the client sent (logged on the call's thread, written
    # on the log writer's).
    assert [r["request_id"] for r in records if r["logger"] == "mcp_gateway.calls"] == ["probe-123"]
