"""Deprecation reaches callers (and owners learn who still calls); retired tools' data is disposed of."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest

from mcp_gateway._gateway import load_gateway
from mcp_gateway.client import connect
from mcp_gateway.lifecycle._dispose import dispose_tool
from tests.conftest import http_gateway, serve_command

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-m", "mcp_gateway"]

CONFIG = """\
format: mcp-gateway/1
providers: {{offline: {{kind: mock}}}}
models: {{default: {{provider: offline, model: mock-1}}}}
sessions: {sessions}
{cache}
audit: {{path: audit.jsonl}}
tools:
  - name: old_tool
    description: Old.
    version: 1.0.0
    status: {old_status}
    sunset: 2020-01-31
    retention_days: {retention}
    context: {{turns: 5}}
    cache: {{ttl_s: 600}}
    input_schema: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}
    messages: [{{role: user, content: "old {{{{ text }}}}"}}]
    model: default
  - name: keep_tool
    description: Kept.
    context: {{turns: 5}}
    cache: {{ttl_s: 600}}
    input_schema: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}
    messages: [{{role: user, content: "keep {{{{ text }}}}"}}]
    model: default
"""


def write(root: Path, *, old_status: str, sessions: str, cache: str = "", retention: int = 30) -> Path:
    path = root / "gateway.yaml"
    path.write_text(CONFIG.format(old_status=old_status, sessions=sessions, cache=cache, retention=retention))
    return path


async def populate(config: Path) -> tuple[str, str]:
    """Two sessions with turns of both tools (each call cached: 4 answers of old_tool), and one more cached
    answer of each tool; returns the session ids."""
    gateway = load_gateway(config)
    try:
        assert gateway.sessions is not None
        ids = []
        for owner in ("alice", "bob"):
            session = await gateway.sessions.start(owner)
            for tool in ("old_tool", "keep_tool", "old_tool"):
                await gateway.call_tool(tool, {"text": f"{owner} {tool}"}, session=session)
            ids.append(session.id)
        await gateway.call_tool("keep_tool", {"text": "cached"})
        await gateway.call_tool("old_tool", {"text": "cached"})
        return ids[0], ids[1]
    finally:
        await gateway.aclose()


def audit_events(root: Path) -> list[dict]:
    path = root / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_dispose_deletes_one_tools_turns_and_cached_answers_from_sqlite_and_redis(tmp_path, redis_url):
    sessions = "{store: sqlite, path: sessions.db}"
    cache = f"response_cache: {{store: redis, url: '{redis_url}', prefix: 'dispose-test:'}}"
    await populate(write(tmp_path, old_status="published", sessions=sessions, cache=cache))
    config = write(tmp_path, old_status="retired", sessions=sessions, cache=cache)

    live = subprocess.run([*CLI, "dispose", str(config), "keep_tool"], capture_output=True, text=True, timeout=60)
    assert live.returncode == 1 and "tool 'keep_tool' still has versions that are not retired (1.0.0)" in live.stderr

    dry = subprocess.run([*CLI, "dispose", str(config), "old_tool", "--dry-run"], capture_output=True, text=True,
                         timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == "old_tool: would delete 4 session turns (sqlite), 5 cached answers (redis)"
    assert audit_events(tmp_path) == []  # a dry run changes nothing, and records nothing

    done = subprocess.run([*CLI, "dispose", str(config), "old_tool", "--json"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted"] == {"session turns (sqlite)": 4, "cached answers (redis)": 5}
    (event,) = audit_events(tmp_path)
    assert (event["method"], event["target"], event["principal"]) == ("lifecycle/dispose", "old_tool",
                                                                     "mcp-gateway dispose")
    assert json.loads(event["detail"]) == {"cached answers (redis)": 5, "session turns (sqlite)": 4}

    gateway = load_gateway(config)
    try:
        assert gateway.sessions is not None
        for record in await gateway.sessions.store.list():
            assert [t.tool for t in await gateway.sessions.store.history(record.id)] == ["keep_tool"]
        again = await dispose_tool(gateway, "old_tool", dry_run=True)
        assert again.total == 0
        kept = await gateway.call_tool("keep_tool", {"text": "cached"})
        assert kept.routed.cache == "hit"  # the other tool's cached answer is still there
    finally:
        await gateway.aclose()


async def test_dispose_in_process_memory_stores(tmp_path):
    config = write(tmp_path, old_status="published", sessions="{store: memory}")
    gateway = load_gateway(config)
    try:
        assert gateway.sessions is not None
        session = await gateway.sessions.start("alice")
        for tool in ("old_tool", "keep_tool"):
            await gateway.call_tool(tool, {"text": "x"}, session=session)
            await gateway.call_tool(tool, {"text": "y"})
        report = await dispose_tool(gateway, "old_tool")
        assert report.deleted == {"session turns (memory)": 1, "cached answers (memory)": 2}
        assert [t.tool for t in await gateway.sessions.store.history(session.id)] == ["keep_tool"]
        assert (await gateway.call_tool("old_tool", {"text": "y"})).routed.cache == "miss"
        assert (await gateway.call_tool("keep_tool", {"text": "y"})).routed.cache == "hit"
    finally:
        await gateway.aclose()


async def test_the_serving_gateway_disposes_of_a_retired_tool_once_its_retention_ends(tmp_path):
    sessions = "{store: sqlite, path: sessions.db}"
    alice, bob = await populate(write(tmp_path, old_status="published", sessions=sessions))
    config = write(tmp_path, old_status="retired", sessions=sessions, retention=1)  # due since 2020-02-01

    async with connect(serve_command(config), timeout=30) as client:
        with pytest.raises(Exception, match="version 1.0.0 was retired on 2020-01-31"):
            await client.call_tool("old_tool", {"text": "x"})
        with anyio.fail_after(20):
            while not any(e["method"] == "lifecycle/dispose" for e in audit_events(tmp_path)):
                await anyio.sleep(0.05)
    (event,) = [e for e in audit_events(tmp_path) if e["method"] == "lifecycle/dispose"]
    assert (event["target"], event["principal"]) == ("old_tool", "mcp-gateway (retention)")
    assert json.loads(event["detail"]) == {"session turns (sqlite)": 4, "cached answers (memory)": 0}
    gateway = load_gateway(config)
    try:
        assert gateway.sessions is not None
        for session_id in (alice, bob):
            assert [t.tool for t in await gateway.sessions.store.history(session_id)] == ["keep_tool"]
    finally:
        await gateway.aclose()


USAGE_CONFIG = """\
format: mcp-gateway/1
providers: {offline: {kind: mock}}
models: {default: {provider: offline, model: mock-1}}
auth: {keys_file: keys.json}
audit: {path: audit.jsonl}
tools:
  - name: find_names
    description: Old.
    version: 0.9.0
    status: deprecated
    replacement: extract_entities
    sunset: 2027-03-31
    messages: [{role: user, content: "names"}]
    model: default
  - name: extract_entities
    description: New.
    messages: [{role: user, content: "entities"}]
    model: default
"""


async def test_owners_see_who_still_calls_deprecated_tools(tmp_path):
    config = tmp_path / "gateway.yaml"
    config.write_text(USAGE_CONFIG)

    def key(name: str, scope: str = "tools:*") -> str:
        return subprocess.run([*CLI, "keys", "create", str(config), "--name", name, "--scope", scope],
                              capture_output=True, text=True, timeout=60, check=True).stdout.strip()

    keys = {"ci": key("ci"), "batch": key("batch"), "prometheus": key("prometheus", "metrics")}
    listed = json.loads(subprocess.run([*CLI, "keys", "list", str(config), "--json"], capture_output=True, text=True,
                                       timeout=60, check=True).stdout)
    principal = {k["name"]: f"key:{k['key_id']}" for k in listed}
    with http_gateway(config) as server:
        for name, calls in (("ci", 3), ("batch", 1)):
            async with connect(f"{server.base_url}/mcp", headers={"Authorization": f"Bearer {keys[name]}"},
                               timeout=30) as client:
                for _ in range(calls):
                    result = await client.call_tool("find_names", {})
                    assert result.meta["mcp-gateway/tool"]["deprecation"]["replacement"] == "extract_entities"
                await client.call_tool("extract_entities", {})
        metrics = httpx2.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {keys['prometheus']}"}).text
        with anyio.fail_after(10):  # the audit log is written in batches
            while sum(e["method"] == "tools/call" for e in audit_events(tmp_path)) < 6:
                await anyio.sleep(0.05)
    lines = [line for line in metrics.splitlines() if line.startswith("mcp_gateway_deprecated_calls_total{")]
    assert sorted(lines) == sorted([
        f'mcp_gateway_deprecated_calls_total{{principal="{principal["batch"]}",tool="find_names",version="0.9.0"}} 1.0',
        f'mcp_gateway_deprecated_calls_total{{principal="{principal["ci"]}",tool="find_names",version="0.9.0"}} 3.0',
    ]), lines
    report = subprocess.run([*CLI, "usage", str(config), "--deprecated", "--json"], capture_output=True, text=True,
                            timeout=60)
    assert report.returncode == 0, report.stderr
    rows = [{k: r[k] for k in ("tool", "version", "principal", "key_name", "calls", "replacement", "sunset")}
            for r in json.loads(report.stdout)]
    assert rows == [
        {"tool": "find_names", "version": "0.9.0", "principal": principal["ci"], "key_name": "ci", "calls": 3,
         "replacement": "extract_entities", "sunset": "2027-03-31"},
        {"tool": "find_names", "version": "0.9.0", "principal": principal["batch"], "key_name": "batch", "calls": 1,
         "replacement": "extract_entities", "sunset": "2027-03-31"},
    ]
    table = subprocess.run([*CLI, "usage", str(config), "--deprecated"], capture_output=True, text=True, timeout=60)
    assert f"find_names  0.9.0    {principal['ci']} (ci)" in table.stdout and "extract_entities" in table.stdout
