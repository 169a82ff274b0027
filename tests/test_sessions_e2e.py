"""Sessions end to end: context across calls in both eras and every transport, the four ways a
session ends, ownership, resources, and concurrency."""

from __future__ import annotations

import json
import re
import textwrap
import time

import anyio
import pytest

from mcp_gateway.client import connect
from tests.conftest import http_gateway, serve_command

pytestmark = pytest.mark.anyio


def write_config(tmp_path, sessions: str = "{}") -> object:
    path = tmp_path / "chat.yaml"
    path.write_text(textwrap.dedent(f"""
        format: mcp-gateway/1
        sessions: {sessions}
        providers: {{offline: {{kind: mock}}}}
        models: {{m: {{provider: offline, model: mock-1}}}}
        tools:
          - name: chat
            description: Chat with memory.
            input_schema:
              type: object
              properties: {{message: {{type: string}}}}
              required: [message]
              additionalProperties: false
            context: {{turns: 3}}
            messages:
              - role: system
                content: "Be brief."
              - role: user
                content: "[{{{{ session.history | length }}}} earlier, mood={{{{ session.state.mood | default('none') }}}}] {{{{ message }}}}"
            model: m
          - name: stateless
            description: No context.
            messages: [{{role: user, content: hello}}]
            model: m
    """))
    return path


def text(result) -> str:
    assert not result.is_error, result.content[0].text
    return result.content[0].text


async def _conversation(client, *, handle: str | None) -> str:
    first = await client.call_tool("chat", {"message": "hi"}, session=handle)
    session_id = first.meta["mcp-gateway/session"]
    assert "[0 earlier, mood=none] hi" in text(first)
    second = await client.call_tool("chat", {"message": "again"}, session=session_id)
    assert "[1 earlier, mood=none] again" in text(second)
    state = await client.call_tool("session_state", {"session_id": session_id, "set": {"mood": "happy"}})
    assert state.structured_content == {"keys": ["mood"], "state_chars": 17}
    read = await client.call_tool("session_state", {"session_id": session_id})
    assert read.structured_content == {"state": {"mood": "happy"}}
    third = await client.call_tool("chat", {"message": "third", "session_id": session_id})  # argument form
    assert "[2 earlier, mood=happy] third" in text(third)
    for i in range(3):
        await client.call_tool("chat", {"message": f"more {i}"}, session=session_id)
    sixth = await client.call_tool("chat", {"message": "last"}, session=session_id)
    assert "[3 earlier" in text(sixth)  # context: turns 3
    return session_id


async def test_handshake_era_gets_a_session_per_connection_automatically(tmp_path):
    async with connect(serve_command(write_config(tmp_path)), mode="legacy", timeout=30) as client:
        names = {t.name for t in await client.list_tools()}
        assert {"session_start", "session_end", "session_state"} <= names
        session_id = await _conversation(client, handle=None)
        history = json.loads((await client.read_resource(f"session://{session_id}/history")).contents[0].text)
        assert [t["seq"] for t in history] == [1, 2, 3, 4, 5, 6, 7]
        assert history[0]["tool"] == "chat" and "hi" in history[0]["input"]
        transcript = (await client.read_resource(f"session://{session_id}/history.md")).contents[0].text
        assert transcript.startswith(f"# Session {session_id}") and "## 7. chat" in transcript


@pytest.mark.parametrize(("path", "mode"), [("/mcp", "auto"), ("/mcp", "legacy"), ("/sse", "legacy")])
async def test_explicit_sessions_over_http(tmp_path, path, mode):
    with http_gateway(write_config(tmp_path)) as server:
        async with connect(server.base_url + path, mode=mode, timeout=30) as client:
            started = await client.call_tool("session_start", {})
            handle = started.structured_content["session_id"]
            assert await _conversation(client, handle=handle) == handle
            ended = await client.call_tool("session_end", {"session_id": handle})
            assert ended.structured_content == {"session_id": handle, "ended": True, "turns": 7}
            refused = await client.call_tool("chat", {"message": "after"}, session=handle)
            assert refused.is_error and refused.content[0].text == f"Session '{handle}' was ended"
            unknown = await client.call_tool("chat", {"message": "x"}, session="sess_nope")
            assert unknown.is_error and unknown.content[0].text == "Unknown session: 'sess_nope'"


async def test_modern_era_without_a_handle_runs_without_context(tmp_path):
    async with connect(serve_command(write_config(tmp_path)), mode="auto", timeout=30) as client:
        first = await client.call_tool("chat", {"message": "one"})
        second = await client.call_tool("chat", {"message": "two"})
    assert "[0 earlier" in text(first) and "[0 earlier" in text(second)
    assert "mcp-gateway/session" not in (second.meta or {})


async def test_disconnect_ends_the_connection_session(tmp_path):
    with http_gateway(write_config(tmp_path)) as server:
        async with connect(server.base_url + "/mcp", mode="legacy", timeout=30) as client:
            result = await client.call_tool("chat", {"message": "hello"})
            session_id = result.meta["mcp-gateway/session"]
        async with connect(server.base_url + "/mcp", mode="auto", timeout=30) as client:
            with anyio.fail_after(10):
                while True:
                    after = await client.call_tool("chat", {"message": "x"}, session=session_id)
                    if after.is_error:
                        break
                    await anyio.sleep(0.1)
    assert after.content[0].text == f"Session '{session_id}' ended when its connection closed"


async def test_an_unused_session_expires_as_idle(tmp_path):
    # A lifetime of an hour cannot be reached first, however slow the machine.
    config = write_config(tmp_path, "{idle_ttl_s: 0.5, max_lifetime_s: 3600}")
    async with connect(serve_command(config), mode="auto", timeout=30) as client:
        started = (await client.call_tool("session_start", {})).structured_content
        idle, expires_at = started["session_id"], started["expires_at"]
        assert expires_at <= time.time() + 0.5
        while time.time() <= expires_at:  # the server reads the same wall clock
            await anyio.sleep(expires_at - time.time() + 0.01)
        expired = await client.call_tool("chat", {"message": "late"}, session=idle)
        assert expired.content[0].text == f"Session '{idle}' expired after being idle"


async def test_a_session_in_use_still_ends_at_its_maximum_lifetime(tmp_path):
    # An idle TTL of an hour cannot end it first, however long a call stalls; that each use moves
    # the idle expiry but never past the lifetime is checked with a fake clock in test_session_manager.
    config = write_config(tmp_path, "{idle_ttl_s: 3600, max_lifetime_s: 1}")
    async with connect(serve_command(config), mode="auto", timeout=30) as client:
        busy = (await client.call_tool("session_start", {})).structured_content["session_id"]
        with anyio.fail_after(30):
            while True:  # used again and again, it still ends
                result = await client.call_tool("chat", {"message": "ping"}, session=busy)
                if result.is_error:
                    break
                await anyio.sleep(0.05)
        assert result.content[0].text == f"Session '{busy}' reached its maximum lifetime"


async def test_100_parallel_calls_on_one_session_lose_no_turn(tmp_path):
    async with connect(serve_command(write_config(tmp_path)), mode="auto", timeout=60) as client:
        handle = (await client.call_tool("session_start", {})).structured_content["session_id"]
        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(lambda i=i: client.call_tool("chat", {"message": f"m{i}"}, session=handle))
        history = json.loads((await client.read_resource(f"session://{handle}/history")).contents[0].text)
    assert [t["seq"] for t in history] == list(range(1, 101))
    assert sorted(t["input"].rsplit(" ", 1)[1] for t in history) == sorted(f"m{i}" for i in range(100))


async def test_resources_of_unknown_sessions_are_refused(tmp_path):
    async with connect(serve_command(write_config(tmp_path)), mode="legacy", timeout=30) as client:
        templates = {t.uri_template for t in await client.list_resource_templates()}
        assert {"session://{id}/history", "session://{id}/history.md", "session://{id}/state"} <= templates
        from mcp_gateway.client import RemoteError

        with pytest.raises(RemoteError, match="Unknown session: 'sess_other'"):
            await client.read_resource("session://sess_other/history")


async def test_history_cannot_push_a_call_past_the_message_limit(tmp_path):
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("format: mcp-gateway/1", "format: mcp-gateway/1\nlimits: {max_messages: 5}"))
    async with connect(serve_command(config), mode="auto", timeout=30) as client:
        handle = (await client.call_tool("session_start", {})).structured_content["session_id"]
        first = await client.call_tool("chat", {"message": "one"}, session=handle)  # 2 messages
        second = await client.call_tool("chat", {"message": "two"}, session=handle)  # 2 + 2 of history
        third = await client.call_tool("chat", {"message": "three"}, session=handle)  # 2 + 4: over
    assert not first.is_error and not second.is_error
    assert third.is_error and third.content[0].text == "the request has 6 messages; the limit is 5"


async def test_session_tools_obey_the_argument_limit_and_the_state_cap(tmp_path):
    """limits.max_argument_chars applies to the built-in tools too; the state has a cap of its own;
    a change answers with the keys and size, not the whole state."""
    config = write_config(tmp_path, "{max_state_chars: 5000}")
    config.write_text(config.read_text() + "limits: {max_argument_chars: 2000}\n")
    async with connect(serve_command(config), mode="auto", timeout=30) as client:
        handle = (await client.call_tool("session_start", {})).structured_content["session_id"]
        too_big = await client.call_tool("session_state", {"session_id": handle, "set": {"a": "x" * 3000}})
        assert too_big.is_error and "the limit is 2,000" in too_big.content[0].text
        for i in range(3):
            ok = await client.call_tool("session_state", {"session_id": handle, "set": {f"k{i}": "x" * 1500}})
            assert ok.structured_content["keys"] == [f"k{j}" for j in range(i + 1)]
            assert len(ok.content[0].text) < 200  # not an echo of the state
        full = await client.call_tool("session_state", {"session_id": handle, "set": {"k3": "x" * 1500}})
        assert full.is_error and re.search(r"the limit is 5,?000", full.content[0].text)
        read = await client.call_tool("session_state", {"session_id": handle})
        assert sorted(read.structured_content["state"]) == ["k0", "k1", "k2"]


async def test_a_session_store_outage_does_not_show_the_store_address_to_clients(tmp_path):
    from tests.redis_server import RedisServer

    redis = RedisServer(tmp_path / "redis")
    redis.start()
    try:
        config = write_config(tmp_path, "{store: redis, url: '%s'}" % redis.url)
        async with connect(serve_command(config), mode="auto", timeout=30) as client:
            handle = (await client.call_tool("session_start", {})).structured_content["session_id"]
            redis.stop(kill=True)
            for name, args in (("session_start", {}), ("session_state", {"session_id": handle}),
                               ("chat", {"message": "hi", "session_id": handle})):
                result = await client.call_tool(name, args)
                assert result.is_error
                assert result.content[0].text == "Session store unavailable; try again shortly"
            with pytest.raises(Exception) as info:
                await client.read_resource(f"session://{handle}/state")
            assert "unavailable" in str(info.value) and str(redis.port) not in str(info.value)
    finally:
        redis.stop()
