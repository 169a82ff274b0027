"""Sessions that outlive a process: SQLite across kill -9 and restart, Redis shared by two gateways."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import anyio
import pytest

from mcp_gateway.client import ClientError, connect
from tests.conftest import http_gateway, serve_command

pytestmark = pytest.mark.anyio


def write_config(tmp_path, sessions: str):
    path = tmp_path / "durable.yaml"
    path.write_text(textwrap.dedent(f"""
        format: mcp-gateway/1
        sessions: {sessions}
        providers: {{offline: {{kind: mock}}}}
        models: {{m: {{provider: offline, model: mock-1}}}}
        tools:
          - name: note
            description: Remembers.
            input_schema: {{type: object, properties: {{text: {{type: string}}}}, required: [text]}}
            context: {{turns: 2}}
            messages: [{{role: user, content: "{{{{ text }}}}"}}]
            model: m
    """))
    return path


async def test_sqlite_keeps_every_acknowledged_turn_across_kill_9(tmp_path):
    config = write_config(tmp_path, "{store: sqlite, path: sessions.db}")
    acknowledged: list[str] = []
    handle = ""
    with http_gateway(config) as server:
        with pytest.raises(ClientError):  # the gateway dies under the writers
            async with connect(server.base_url + "/mcp", mode="auto", timeout=30) as client:
                handle = (await client.call_tool("session_start", {})).structured_content["session_id"]

                async def writer(worker: int) -> None:
                    for i in range(1000):
                        text = f"w{worker}-{i}"
                        result = await client.call_tool("note", {"text": text}, session=handle)
                        assert not result.is_error
                        acknowledged.append(text)

                async with anyio.create_task_group() as tg:
                    for worker in range(4):
                        tg.start_soon(writer, worker)
                    with anyio.fail_after(30):
                        while len(acknowledged) < 40:
                            await anyio.sleep(0.01)
                    os.kill(server.proc.pid, signal.SIGKILL)
    assert len(acknowledged) >= 40
    # A new gateway process on the same database file sees every acknowledged turn.
    with http_gateway(config) as server:
        async with connect(server.base_url + "/mcp", mode="auto", timeout=30) as client:
            history = json.loads((await client.read_resource(f"session://{handle}/history")).contents[0].text)
            result = await client.call_tool("note", {"text": "after restart"}, session=handle)
    stored = [turn["input"] for turn in history]
    assert set(acknowledged) <= set(stored)
    assert [t["seq"] for t in history] == list(range(1, len(history) + 1))  # no gap, no duplicate
    assert not result.is_error


async def test_two_gateways_share_sessions_through_redis(tmp_path, redis_url):
    config = write_config(tmp_path, f"{{store: redis, url: '{redis_url}/0'}}".replace("//0", "/0"))
    with http_gateway(config) as first, http_gateway(config) as second:
        async with connect(first.base_url + "/mcp", mode="auto", timeout=30) as one:
            handle = (await one.call_tool("session_start", {})).structured_content["session_id"]
            await one.call_tool("note", {"text": "said on the first gateway"}, session=handle)
        async with connect(second.base_url + "/mcp", mode="legacy", timeout=30) as two:
            result = await two.call_tool("note", {"text": "continued on the second"}, session=handle)
            assert not result.is_error
            history = json.loads((await two.read_resource(f"session://{handle}/history")).contents[0].text)
            await two.call_tool("session_end", {"session_id": handle})
        async with connect(first.base_url + "/mcp", mode="auto", timeout=30) as one:
            refused = await one.call_tool("note", {"text": "too late"}, session=handle)
    assert [t["input"] for t in history] == ["said on the first gateway", "continued on the second"]
    assert refused.is_error and refused.content[0].text == f"Session '{handle}' was ended"


def test_sessions_cli_manages_a_sqlite_store(tmp_path):
    config = write_config(tmp_path, "{store: sqlite, path: sessions.db}")

    async def make_session() -> str:
        async with connect(serve_command(config), mode="auto", timeout=30) as client:
            handle = (await client.call_tool("session_start", {})).structured_content["session_id"]
            await client.call_tool("note", {"text": "hello"}, session=handle)
            return handle

    handle = anyio.run(make_session)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mcp_gateway", "sessions", *args], capture_output=True,
                              text=True, timeout=60)

    listed = cli("list", str(config))
    assert handle in listed.stdout and "active" in listed.stdout
    shown = json.loads(cli("show", str(config), handle).stdout)
    assert shown["turn_count"] == 1 and shown["owner"] == "anonymous"
    exported = json.loads(cli("export", str(config), handle).stdout)
    assert exported["turns"][0]["input"] == "hello"
    assert "ended (ended) after 1 turns" in cli("end", str(config), handle).stdout
    assert json.loads(cli("list", str(config), "--ended", "--json").stdout)[0]["id"] == handle
    assert cli("purge", str(config), "--older-than", "0").stdout.strip() == "0 expired, 1 purged"
    assert cli("show", str(config), handle).returncode == 1
