"""Fuzzing the JSON-RPC boundary: whatever arrives, the gateway answers sensibly (never a 500, never
a crash) and keeps serving. (The YAML loader has its own fuzz tests in test_config_errors.py.)"""

from __future__ import annotations

import json

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import http_gateway

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
METHODS = st.sampled_from(["initialize", "tools/list", "tools/call", "prompts/get", "resources/read",
                           "completion/complete", "ping", "server/discover", "nope", "notifications/initialized"])
MESSAGE = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2]), "method": METHODS},
    optional={"id": st.integers() | st.text(max_size=8) | st.none(), "params": JSON},
)
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
SERVING_STATUSES = {200, 202, 400, 404, 405, 406, 413, 415, 422}


@pytest.fixture(scope="module")
def server():
    with http_gateway() as running:
        yield running


def _post(server, body: bytes, extra: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.post(server.base_url + "/mcp", content=body, headers={**HEADERS, **(extra or {})}, timeout=10)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=MESSAGE | JSON)
def test_random_json_rpc_never_breaks_the_server(server, message):
    response = _post(server, json.dumps(message).encode())
    assert response.status_code in SERVING_STATUSES, response.text
    # Both eras: as a 2026-07-28 request too.
    modern = _post(server, json.dumps(message).encode(), {"MCP-Protocol-Version": "2026-07-28"})
    assert modern.status_code in SERVING_STATUSES, modern.text


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_random_bytes_never_break_the_server(server, raw):
    assert _post(server, raw).status_code in SERVING_STATUSES


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=JSON, name=st.sampled_from(["summarize", "classify_ticket", "extract_entities", "nope", ""]))
def test_random_tool_arguments_get_a_result_or_a_clear_error(server, arguments, name):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": name, "arguments": arguments,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "0"},
                  "io.modelcontextprotocol/clientCapabilities": {}}}}
    response = _post(server, json.dumps(body).encode(), {"MCP-Protocol-Version": "2026-07-28",
                                                         "Mcp-Method": "tools/call", "Mcp-Name": name})
    assert response.status_code in SERVING_STATUSES
    if response.status_code == 200:
        text = response.text  # plain JSON, or an SSE stream whose data line carries the answer
        body_text = text.split("data:", 1)[1].strip().splitlines()[0] if "data:" in text else text
        payload = json.loads(body_text)
        assert "result" in payload or payload["error"]["message"]


def test_still_serving_after_the_fuzzing(server):
    assert httpx2.get(server.base_url + "/healthz").json()["status"] == "ok"
    assert not any("Traceback" in line for line in server.log), "".join(server.log[-40:])
