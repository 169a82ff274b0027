"""A gateway shared by a team: authentication and scopes on both HTTP transports, exact rate
limits, metrics, an audit trail, and secrets that never leak."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import anyio
import httpx2
import jwt
import pytest

from mcp_gateway.client import RemoteError, connect
from tests.conftest import EXAMPLE, http_gateway

pytestmark = pytest.mark.anyio

JWT_SECRET = "test-jwt-secret-0123456789abcdefghij"


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """The example gateway plus auth, limits and audit; three keys made with the CLI."""
    root = tmp_path_factory.mktemp("team")
    for item in ("prompts", "docs", "tools"):
        shutil.copytree(EXAMPLE.parent / item, root / item)
    text = EXAMPLE.read_text() + textwrap.dedent("""
        auth:
          keys_file: keys.json
          jwt: {secret: "${env:GATEWAY_JWT_SECRET}", issuer: tests, audience: mcp-gateway}
        rate_limits:
          per_tool: {rewrite_tone: {requests_per_minute: 1000}}
        audit: {path: audit.jsonl}
    """)
    config = root / "gateway.yaml"
    config.write_text(text)

    def create(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "mcp_gateway", "keys", "create", str(config), *args],
                             capture_output=True, text=True, timeout=60, check=True)
        return out.stdout.strip()

    keys = {
        "scraper": create("--name", "prometheus", "--scope", "metrics"),
        "full": create("--name", "ci", "--scope", "tools:*", "--scope", "prompts:*", "--scope", "resources:*"),
        "summarize_only": create("--name", "intern", "--scope", "tools:summarize", "--scope", "prompts:summarize"),
        "limited": create("--name", "batch", "--scope", "tools:*", "--rpm", "5"),
        "audited": create("--name", "auditor", "--scope", "tools:*"),  # used by one test only
        "usage_reader": create("--name", "dash", "--scope", "tools:summarize", "--scope", "resources:*"),
    }
    os.environ["GATEWAY_JWT_SECRET"] = JWT_SECRET
    try:
        with http_gateway(config) as server:
            yield server, keys, root
    finally:
        os.environ.pop("GATEWAY_JWT_SECRET", None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_jwt(**claims) -> str:
    now = int(time.time())
    body = {"sub": "alice", "iss": "tests", "aud": "mcp-gateway", "iat": now, "exp": now + 600,
            "scope": "tools:* prompts:*", **claims}
    return jwt.encode(body, JWT_SECRET, algorithm="HS256")


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.mark.parametrize("credentials", [None, "mgw_0000000000000000_nope", "not-a-key", "expired-jwt", "bad-sig"])
def test_unauthenticated_requests_get_401_and_touch_nothing(team, credentials):
    server, _, _ = team
    token = {"expired-jwt": make_jwt(exp=int(time.time()) - 3600),
             "bad-sig": jwt.encode({"sub": "x", "iss": "tests", "aud": "mcp-gateway", "exp": int(time.time()) + 60},
                                   "another-secret-0123456789abcdefghijklmn", algorithm="HS256")}.get(credentials, credentials)
    headers = {**ACCEPT, **(bearer(token) if token else {})}
    for method, path in (("POST", "/mcp"), ("GET", "/sse"), ("POST", "/messages/?session_id=x")):
        response = httpx2.request(method, server.base_url + path, json=INIT if method == "POST" else None,
                                  headers=headers, timeout=10)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert httpx2.get(server.base_url + "/healthz").status_code == 200


@pytest.mark.parametrize(("path", "mode"), [("/mcp", "legacy"), ("/mcp", "auto"), ("/sse", "legacy")])
async def test_scopes_decide_what_a_key_sees_and_may_call(team, path, mode):
    server, keys, _ = team
    async with connect(server.base_url + path, mode=mode, headers=bearer(keys["full"]), timeout=30) as client:
        assert len(await client.list_tools()) == 10  # 7 served tools and the 3 session tools
        assert not (await client.call_tool("translate", {"text": "hi", "target_language": "de"})).is_error
    async with connect(server.base_url + path, mode=mode, headers=bearer(keys["summarize_only"]),
                       timeout=30) as client:
        assert [t.name for t in await client.list_tools()] == ["summarize"]
        assert [p.name for p in await client.list_prompts()] == ["summarize"]
        assert await client.list_resources() == []
        assert not (await client.call_tool("summarize", {"text": "allowed"})).is_error
        with pytest.raises(RemoteError, match="Unknown tool: 'translate'"):
            await client.call_tool("translate", {"text": "hi", "target_language": "de"})
        with pytest.raises(RemoteError, match="Unknown resource"):
            await client.read_resource("docs://style-guide")


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
async def test_jwt_bearer_tokens(team, path):
    server, _, _ = team
    async with connect(server.base_url + path, mode="legacy", headers=bearer(make_jwt()), timeout=30) as client:
        result = await client.call_tool("summarize", {"text": "signed"})
    assert not result.is_error


async def test_rate_limit_admits_exactly_the_limit_and_says_when_to_retry(team):
    server, keys, _ = team
    results = []
    async with connect(server.base_url + "/mcp", mode="auto", headers=bearer(keys["limited"]), timeout=30) as client:
        await client.list_tools()

        async def call(i: int) -> None:
            results.append(await client.call_tool("summarize", {"text": f"burst {i}"}))

        async with anyio.create_task_group() as tg:
            for i in range(12):
                tg.start_soon(call, i)
    refused = [r for r in results if r.is_error]
    assert len(results) - len(refused) == 5
    assert all(r.content[0].text.startswith("Rate limit exceeded") for r in refused)
    assert all(0 < r.meta["mcp-gateway/retry_after_s"] <= 60 for r in refused)


async def test_metrics_audit_and_logs_never_show_a_secret(team):
    server, keys, root = team
    principal = "key:" + keys["audited"].split("_")[1]  # no other test uses this key
    async with connect(server.base_url + "/mcp", mode="auto", headers=bearer(keys["audited"]),
                       timeout=30) as client:
        await client.call_tool("summarize", {"text": "for the record"})
        await client.call_tool("summarize", {"sentences": "x"})
    metrics = httpx2.get(server.base_url + "/metrics", headers=bearer(keys["scraper"])).text
    assert 'mcp_gateway_requests_total{method="tools/call",outcome="ok",tool="summarize"}' in metrics
    assert "gen_ai_client_token_usage_bucket" in metrics
    audit = root / "audit.jsonl"

    def own_outcomes() -> list[str]:
        lines = audit.read_text().splitlines() if audit.exists() else []
        return sorted(e["outcome"] for e in map(json.loads, lines)
                      if e["principal"] == principal and e["target"] == "summarize")

    with anyio.fail_after(10):  # the audit log is written off the call path: wait for this test's events
        while own_outcomes() != ["error", "ok"]:
            await anyio.sleep(0.05)
    everything = metrics + audit.read_text() + "".join(server.log)
    for secret in (*keys.values(), JWT_SECRET):
        assert secret not in everything
    assert secret_free(keys, (root / "keys.json").read_text())


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_out_of_scope_requests_see_nothing_and_are_audited(team, mode):
    server, keys, root = team
    async with connect(server.base_url + "/mcp", mode=mode, headers=bearer(keys["full"]), timeout=30) as client:
        assert not (await client.call_tool("translate", {"text": "hi", "target_language": "de"})).is_error
    async with connect(server.base_url + "/mcp", mode=mode, headers=bearer(keys["summarize_only"]),
                       timeout=30) as client:
        allowed = await client._client.complete(
            ref={"type": "ref/prompt", "name": "summarize"}, argument={"name": "audience", "value": "ex"})
        hidden = await client._client.complete(
            ref={"type": "ref/prompt", "name": "translate"}, argument={"name": "formality", "value": ""})
        with pytest.raises(RemoteError, match="Unknown tool: 'classify_ticket'"):
            await client.call_tool("classify_ticket", {"ticket": "scope probe"})
        with pytest.raises(RemoteError, match="Unknown prompt: 'translate'"):
            await client.get_prompt("translate", {"text": "x"})
    assert allowed.completion.values == ["expert", "executive"]
    assert hidden.completion.values == [] and hidden.completion.total == 0
    async with connect(server.base_url + "/mcp", mode="auto", headers=bearer(keys["usage_reader"]),
                       timeout=30) as client:
        await client.call_tool("summarize", {"text": "counted"})
        usage = json.loads((await client.read_resource("gateway://usage")).contents[0].text)
    assert set(usage) == {"tools"} and set(usage["tools"]) == {"summarize"}
    audit = root / "audit.jsonl"

    def refused() -> set[tuple[str, str]]:
        lines = audit.read_text().splitlines() if audit.exists() else []
        return {(e["method"], e["target"]) for e in map(json.loads, lines) if e["error_kind"] == "out_of_scope"}

    # The audit log is written off the call path, and earlier tests left refusals of their own in
    # it: wait for this test's two (no other test probes these targets).
    with anyio.fail_after(30):
        while not {("tools/call", "classify_ticket"), ("prompts/get", "translate")} <= refused():
            await anyio.sleep(0.05)
    metrics = httpx2.get(server.base_url + "/metrics", headers=bearer(keys["scraper"])).text
    assert 'error_kind="out_of_scope",method="tools/call",tool="classify_ticket"' in metrics


def secret_free(keys: dict[str, str], text: str) -> bool:
    """The key store holds salted hashes only: no key's secret part appears in it."""
    return not any(key.split("_")[2] in text for key in keys.values())


async def test_stdio_stays_keyless(team):
    _, _, root = team
    from tests.conftest import serve_command

    async with connect(serve_command(root / "gateway.yaml"), mode="legacy", timeout=30,
                       env={"GATEWAY_JWT_SECRET": JWT_SECRET, "PATH": "/usr/bin:/bin"}) as client:
        assert len(await client.list_tools()) == 10  # 7 served tools and the 3 session tools


async def test_every_call_is_audited_when_the_server_stops_at_once(tmp_path):
    """One audit line per accepted and per refused call, in call order, secret-free, even when the
    server is stopped right after the last answer (the unit tests cover a batch still queued at close)."""
    for item in ("prompts", "docs", "tools"):
        shutil.copytree(EXAMPLE.parent / item, tmp_path / item)
    config = tmp_path / "gateway.yaml"
    config.write_text(EXAMPLE.read_text() + "auth: {keys_file: keys.json}\naudit: {path: audit.jsonl}\n"
                      "rate_limits: {per_tool: {summarize: {requests_per_minute: 10}}}\n")
    key = subprocess.run([sys.executable, "-m", "mcp_gateway", "keys", "create", str(config),
                          "--name", "burst", "--scope", "tools:*"],
                         capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    with http_gateway(config) as server:
        async with connect(server.base_url + "/mcp", mode="auto", headers=bearer(key), timeout=30) as client:
            results = [await client.call_tool("summarize", {"text": f"call {i}"}) for i in range(15)]
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a graceful stop
    assert [r.is_error for r in results] == [False] * 10 + [True] * 5
    events = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    calls = [e for e in events if e["method"] == "tools/call"]
    outcomes = [(e["outcome"], e["error_kind"]) for e in calls]
    assert outcomes == [("ok", None)] * 10 + [("error", "rate_limit")] * 5
    assert key.split("_")[2] not in (tmp_path / "audit.jsonl").read_text()
