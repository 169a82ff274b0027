"""The raw stdio wire: stdout carries JSON-RPC only, and garbage in never stops the server."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

from tests.conftest import EXAMPLE, StdoutMessages

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}


def _exchange(lines: list[str], expect_ids: set[int], *, log_level: str = "debug") -> tuple[list[dict], str]:
    """Send raw lines to `mcp-gateway serve`, read until every id in `expect_ids` is answered.

    Stdin stays open until then: closing it ends the session, and in-flight requests with it.
    """
    errors = tempfile.TemporaryFile("w+")  # a file, not a pipe: a full stderr pipe would block the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_gateway", "serve", str(EXAMPLE), "--log-level", log_level],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True,
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write("".join(line + "\n" for line in lines))
    proc.stdin.flush()
    stdout = StdoutMessages(proc)
    stdout.answered(*expect_ids)
    proc.stdin.close()
    messages = stdout.rest()
    proc.wait(timeout=30)
    errors.seek(0)
    return messages, errors.read()


def test_stdout_is_protocol_only_even_with_debug_logs():
    messages, stderr = _exchange([
        json.dumps(INIT),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "summarize", "arguments": {"text": "hello"}}}),
    ], {1, 2})
    assert all(m.get("jsonrpc") == "2.0" for m in messages)
    by_id = {m["id"]: m for m in messages if "id" in m}
    assert by_id[1]["result"]["serverInfo"]["name"] == "example-gateway"
    assert by_id[1]["result"]["capabilities"]["tools"] == {"listChanged": True}
    assert by_id[2]["result"]["isError"] is False
    # Logs went to stderr.
    assert "loaded 7 tools" in stderr and "tool=summarize" in stderr


def test_malformed_messages_get_errors_and_the_server_keeps_serving():
    messages, _ = _exchange([
        json.dumps(INIT),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        "this is not json",
        '{"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": 42}}',
        '{"jsonrpc": "2.0", "id": 6, "method": "no/such/method"}',
        '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "summarize", "arguments": "x"}}',
        '[1, 2, 3]',
        json.dumps({"jsonrpc": "2.0", "id": 8, "method": "tools/list"}),
    ], {1, 5, 6, 7, 8})
    by_id = {m.get("id"): m for m in messages}
    assert by_id[5]["error"]["code"] == -32602
    assert by_id[6]["error"]["code"] == -32601
    assert by_id[7]["error"]["code"] == -32602
    assert len(by_id[8]["result"]["tools"]) == 10  # still serving after all of the above


def _ordered(value: object) -> object:
    """A JSON value with every object's key order made part of its equality."""
    if isinstance(value, dict):
        return [(key, _ordered(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value


def test_tool_results_on_the_wire_are_what_the_sdk_model_would_send():
    """tools/call results are built as the dict the SDK's CallToolResult dumps to: the bytes on the
    wire must be those the model would have produced, key order included, for a text and a
    structured answer."""
    from mcp.server.runner import _dump_result
    from mcp_types import CallToolResult, TextContent
    from mcp_types.methods import serialize_server_result

    messages = _in_turn([
        INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "summarize", "arguments": {"text": "héllo \u2028 \"quoted\""}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
         "params": {"name": "classify_ticket", "arguments": {"ticket": "My invoice is wrong"}}},
    ])
    by_id = {m["id"]: m for m in messages if "id" in m}
    assert "structuredContent" in by_id[3]["result"]
    for rid in (2, 3):
        sent = by_id[rid]["result"]
        model = CallToolResult(content=[TextContent(type="text", text=sent["content"][0]["text"])],
                               structured_content=sent.get("structuredContent"), meta=sent["_meta"])
        expected = serialize_server_result("tools/call", INIT["params"]["protocolVersion"], _dump_result(model))
        assert _ordered(sent) == _ordered(expected)


def _in_turn(messages: list[dict]) -> list[dict]:
    """Send each message after the answer to the previous request (as a client does); every
    message received, in order."""
    proc = subprocess.Popen([sys.executable, "-m", "mcp_gateway", "serve", str(EXAMPLE), "--log-level", "warning"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdin and proc.stdout
    stdout = StdoutMessages(proc)
    try:
        for message in messages:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
            if "id" in message:
                stdout.answered(message["id"])
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return stdout.messages


def test_a_client_hears_of_each_call_only_at_the_log_level_it_set():
    call = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "summarize", "arguments": {"text": "hi"}}}
    received = _in_turn([
        INIT, {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {**call, "id": 2},  # no level set yet: no log message
        {"jsonrpc": "2.0", "id": 3, "method": "logging/setLevel", "params": {"level": "warning"}},
        {**call, "id": 4},  # info is below warning
        {"jsonrpc": "2.0", "id": 5, "method": "logging/setLevel", "params": {"level": "info"}},
        {**call, "id": 6},
    ])
    order = [m.get("id", m.get("method")) for m in received]
    logs = [m for m in received if m.get("method") == "notifications/message"]
    assert len(logs) == 1 and order.index(5) < order.index("notifications/message") < order.index(6)
    result = next(m["result"] for m in received if m.get("id") == 6)
    assert logs[0]["params"]["level"] == "info" and logs[0]["params"]["data"]["tool"] == "summarize"
    assert logs[0]["params"]["data"]["route"] == result["_meta"]["mcp-gateway/call"]["route"]
