"""Over the network: Streamable HTTP (stateful and stateless, both eras) and legacy SSE, from one
`mcp-gateway serve --transport http` process, with the transport protections on."""

from __future__ import annotations

import json

import httpx2
import jsonschema
import pytest

from mcp_gateway.client import ClientError, connect
from tests.conftest import EXAMPLE, http_gateway

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def server():
    with http_gateway() as running:
        yield running


@pytest.fixture(scope="module")
def stateless_server():
    with http_gateway(EXAMPLE, "--stateless") as running:
        yield running


@pytest.mark.parametrize(("path", "mode", "version"), [
    ("/mcp", "legacy", "2025-11-25"),
    ("/mcp", "auto", "2026-07-28"),
    ("/sse", "legacy", "2025-11-25"),
])
async def test_every_transport_lists_and_calls(server, path, mode, version):
    async with connect(server.base_url + path, mode=mode, timeout=30) as client:
        assert client.protocol_version == version
        tools = {t.name: t for t in await client.list_tools()}
        assert "summarize" in tools and "draft_release_notes" not in tools
        result = await client.call_tool("classify_ticket", {"ticket": "Refund please"})
        jsonschema.validate(result.structured_content, tools["classify_ticket"].output_schema)
        bad = await client.call_tool("summarize", {"sentences": 0})
        assert bad.is_error and "$.sentences: 0 is less than the minimum of 1" in bad.content[0].text
        entry = await client.read_resource("glossary://retry")
        assert entry.contents[0].text.startswith("# retry")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stateless_mode(stateless_server, mode):
    async with connect(stateless_server.base_url + "/mcp", mode=mode, timeout=30) as client:
        result = await client.call_tool("summarize", {"text": "stateless"})
    assert not result.is_error and "stateless" in result.content[0].text


def test_healthz(server):
    response = httpx2.get(server.base_url + "/healthz")
    assert response.json() == {"status": "ok", "tools": 7}


def test_dns_rebinding_protection_refuses_foreign_host_and_origin(server):
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    evil_host = httpx2.post(server.base_url + "/mcp", json=body, headers={**headers, "Host": "evil.example:80"})
    assert evil_host.status_code == 421
    message = evil_host.json()["error"]["message"]  # says which Host, and how to allow it
    assert "Host 'evil.example:80' is not allowed" in message and "--allow-host evil.example" in message
    assert "proxy_set_header Host $http_host" in message
    evil_origin = httpx2.post(server.base_url + "/mcp", json=body, headers={**headers, "Origin": "http://evil.example"})
    assert evil_origin.status_code == 403
    ok = httpx2.post(server.base_url + "/mcp", json=body, headers={**headers, "Origin": "http://localhost:3000"})
    assert ok.status_code == 200


async def test_the_client_shows_why_a_host_was_refused():
    """Behind a proxy that forwards its upstream's name, the user learns the fix, not just "error"."""
    with http_gateway(EXAMPLE) as running:
        port = running.base_url.rsplit(":", 1)[1]
        with pytest.raises(ClientError, match=r"Host 'gateway-upstream:\d+' is not allowed.*--allow-host"):
            async with connect(running.base_url + "/mcp", mode="legacy", timeout=10,
                               headers={"Host": f"gateway-upstream:{port}"}):
                pass
    with http_gateway(EXAMPLE, "--allow-host", "gateway-upstream") as running:  # any port of that name
        answer = httpx2.post(running.base_url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                             headers={"Host": "gateway-upstream:9999", "Accept": "application/json, text/event-stream",
                                      "Content-Type": "application/json"})
        assert answer.status_code != 421


def test_oversized_and_malformed_bodies_get_clear_http_errors(server):
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    huge = httpx2.post(server.base_url + "/mcp", content=b"x" * (5 * 1024 * 1024), headers=headers)
    assert huge.status_code == 413
    garbage = httpx2.post(server.base_url + "/mcp", content=b"{not json", headers=headers)
    assert garbage.status_code == 400
    assert json.loads(garbage.text)["error"]["code"] == -32700
    assert httpx2.get(server.base_url + "/healthz").status_code == 200  # still serving


def test_logs_say_where_it_listens(server):
    assert any("(Streamable HTTP, stateful)" in line and "/sse (legacy SSE)" in line for line in server.log)


def test_a_connection_that_never_finishes_its_headers_is_closed():
    """Slowloris: trickled, never-finished headers get --header-timeout seconds, then the socket closes;
    a keep-alive connection's next request gets the same deadline."""
    import socket
    from urllib.parse import urlsplit

    # 3 s: the complete request below must arrive within it even on a busy machine; the stalled
    # ones never complete, so how long the deadline is cannot change their outcome.
    with http_gateway(EXAMPLE, "--header-timeout", "3") as server:
        host, port = urlsplit(server.base_url).hostname, urlsplit(server.base_url).port
        with socket.create_connection((host, port), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line: never complete
            assert sock.recv(1024) == b""  # closed by the server, well before the 30 s socket timeout
        with socket.create_connection((host, port), timeout=30) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            response = b""
            while not response.endswith(b"}"):
                chunk = sock.recv(4096)
                assert chunk, response  # closed before the answer: not a hang
                response += chunk
            assert b"200 OK" in response  # a complete request is served as before
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next one stalls
            assert sock.recv(1024) == b""
        assert any("no complete request headers within" in line for line in server.log)
