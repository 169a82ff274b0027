"""Third-party MCP clients from npm (the TypeScript SDK and the MCP Inspector) use the gateway
over stdio, and our client uses a third-party server (server-everything) over stdio."""

from __future__ import annotations

import jsonschema
import pytest

from mcp_gateway.client import connect
from tests.conftest import EXAMPLE, serve_command
from tests.interop.inspector import inspector, inspector_call_tool, inspector_list_tools, server_everything_command, \
    ts_client

pytestmark = pytest.mark.interop

GATEWAY = serve_command(EXAMPLE)


def test_typescript_sdk_lists_and_calls_tools():
    out = ts_client(GATEWAY, call="classify_ticket", args={"ticket": "The app crashes on login"})
    assert out["protocolVersion"] == "2025-11-25"
    assert out["serverInfo"]["name"] == "example-gateway"
    tools = {t["name"]: t for t in out["tools"]}
    assert "summarize" in tools and "draft_release_notes" not in tools
    call = out["call"]
    assert call["isError"] is False
    jsonschema.validate(call["structuredContent"], tools["classify_ticket"]["outputSchema"])
    assert {p["name"] for p in out["prompts"]} >= {"review_draft", "summarize"}
    assert {r["uri"] for r in out["resources"]} == {"docs://style-guide", "gateway://usage"}


def test_typescript_sdk_sees_errors_the_protocol_way():
    unknown = ts_client(GATEWAY, call="nope", args={})["call"]
    assert unknown["error"]["code"] == -32602 and unknown["error"]["source"] == "server"
    bad = ts_client(GATEWAY, call="summarize", args={"sentences": "many"})["call"]
    assert bad["isError"] is True
    assert "$.sentences: 'many' is not of type 'integer'" in bad["content"][0]["text"]


def test_typescript_sdk_gets_prompts_and_reads_resources():
    out = ts_client(GATEWAY, prompt="review_draft", prompt_args={"draft": "Hello"}, read="glossary://cache")
    assert out["prompt"]["messages"][0]["content"]["text"].rstrip().endswith("Hello")
    assert out["read"]["contents"][0]["text"].startswith("# cache")


def test_inspector_lists_and_calls_tools():
    names = {t["name"] for t in inspector_list_tools(GATEWAY)}
    assert names == {"summarize", "translate", "classify_ticket", "rewrite_tone", "chat", "find_names",
                     "extract_entities", "session_start", "session_end", "session_state"}
    result = inspector_call_tool(GATEWAY, "translate", {"text": "Good morning", "target_language": "French"})
    assert result["isError"] is False
    assert "Translate into French (neutral register)" in result["content"][0]["text"]
    prompts = inspector(GATEWAY, "prompts/list")
    assert any(p["name"] == "review_draft" for p in prompts["prompts"])


@pytest.mark.anyio
async def test_our_client_uses_server_everything():
    async with connect(server_everything_command(), mode="auto", timeout=30) as client:
        tools = {t.name for t in await client.list_tools()}
        assert {"echo", "get-sum"} <= tools
        result = await client.call_tool("get-sum", {"a": 2, "b": 3})
    assert result.content[0].text == "The sum of 2 and 3 is 5."
