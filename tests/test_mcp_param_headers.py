"""2026-07-28 `Mcp-Param-*` headers: a tool whose input schema annotates a property with
`x-mcp-header` has a call's header checked against its argument (a mismatch is refused before the
tool runs); a tool without annotations ignores such headers. Only annotated schemas are handed to
the SDK's check, which otherwise walked every schema on every call to find none."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from mcp_gateway.server import GatewayServer
from tests.conftest import RunningServer, http_gateway

CONFIG = textwrap.dedent("""\
    format: mcp-gateway/1
    providers:
      offline: {kind: mock}
    models:
      default: {provider: offline, model: mock-1}
    tools:
      - name: regional
        description: Answer for one region.
        model: default
        messages: [{role: user, content: "{{ question }} ({{ region }})"}]
        input_schema:
          type: object
          properties:
            region: {type: string, x-mcp-header: Region}
            question: {type: string}
          required: [region, question]
      - name: plain
        description: Answer a question.
        model: default
        messages: [{role: user, content: "{{ question }}"}]
        input_schema:
          type: object
          properties:
            question: {type: string}
          required: [question]
    """)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mcp-param") / "gateway.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def server(config: Path) -> Iterator[RunningServer]:
    with http_gateway(config) as running:
        yield running


def call(server: RunningServer, name: str, arguments: dict[str, Any],
         headers: dict[str, str]) -> httpx2.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": name, "arguments": arguments, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}}
    return httpx2.post(server.base_url + "/mcp", json=body, trust_env=False, timeout=30, headers={
        "accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call", "mcp-name": name, **headers})


def answer_text(response: httpx2.Response) -> str:
    assert response.status_code == 200, response.text
    lines = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    message = json.loads(lines[-1] if lines else response.text)
    assert "result" in message and not message["result"].get("isError"), message
    return str(message["result"]["content"][0]["text"])


def test_only_annotated_schemas_go_to_the_header_check(config: Path) -> None:
    views = GatewayServer.from_config(config).live.views
    assert set(views.input_schemas) == {"regional"}


def test_a_matching_header_is_accepted(server: RunningServer) -> None:
    arguments = {"region": "eu", "question": "hi"}
    assert answer_text(call(server, "regional", arguments, {"Mcp-Param-Region": "eu"}))


def test_a_mismatching_header_is_refused_before_the_tool_runs(server: RunningServer) -> None:
    response = call(server, "regional", {"region": "eu", "question": "hi"}, {"Mcp-Param-Region": "us"})
    assert response.status_code == 400, response.text
    assert "Mcp-Param-Region" in response.text


def test_a_missing_header_for_a_present_argument_is_refused(server: RunningServer) -> None:
    response = call(server, "regional", {"region": "eu", "question": "hi"}, {})
    assert response.status_code == 400, response.text
    assert "Mcp-Param-Region" in response.text


def test_a_tool_without_annotations_ignores_param_headers(server: RunningServer) -> None:
    assert answer_text(call(server, "plain", {"question": "hi"}, {"Mcp-Param-Region": "anything"}))
