"""The TypeScript SDK client and the MCP Inspector use the gateway over Streamable HTTP and SSE."""

from __future__ import annotations

import pytest

from tests.conftest import http_gateway
from tests.interop.inspector import inspector_call_tool, inspector_list_tools, ts_client

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def server():
    with http_gateway() as running:
        yield running


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
def test_typescript_sdk_over_http(server, path):
    out = ts_client(server.base_url + path, call="summarize", args={"text": "over the wire"},
                    prompt="summarize", prompt_args={"text": "p"}, read="docs://style-guide")
    assert out["serverInfo"]["name"] == "example-gateway"
    assert "summarize" in {t["name"] for t in out["tools"]}
    assert out["call"]["isError"] is False and "over the wire" in out["call"]["content"][0]["text"]
    assert out["prompt"]["messages"][1]["content"]["text"].rstrip().endswith("p\n</text>".rstrip())
    assert out["read"]["contents"][0]["text"].startswith("# House style guide")


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
def test_inspector_over_http(server, path):
    names = {t["name"] for t in inspector_list_tools(server.base_url + path)}
    assert "extract_entities" in names
    result = inspector_call_tool(server.base_url + path, "rewrite_tone", {"text": "hey", "tone": "formal"})
    assert result["isError"] is False
