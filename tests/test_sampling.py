"""The `sampling` provider: the MCP client's own model answers, in both protocol eras."""

from __future__ import annotations

import textwrap

import mcp_types as types
import pytest

from mcp_gateway.client import connect
from tests.conftest import http_gateway, serve_command

pytestmark = pytest.mark.anyio

CONFIG = textwrap.dedent("""
    format: mcp-gateway/1
    providers: {client: {kind: sampling}}
    models: {yours: {provider: client, model: claude-sonnet}}
    tools:
      - name: haiku
        description: Writes a haiku with the client's own model.
        input_schema: {type: object, properties: {topic: {type: string}}, required: [topic]}
        messages:
          - {role: system, content: "You write haiku."}
          - {role: user, content: "A haiku about {{ topic }}"}
        model: yours
        params: {max_tokens: 60, temperature: 0.7}
""")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "sampling.yaml"
    path.write_text(CONFIG)
    return path


def make_model(seen: list):
    async def sampling(context, params: types.CreateMessageRequestParams):
        seen.append(params)
        asked = params.messages[-1].content.text
        return types.CreateMessageResult(role="assistant", model="client-model", stop_reason="endTurn",
                                         content=types.TextContent(type="text", text=f"echo: {asked}"))
    return sampling


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_clients_model_answers_over_stdio(config, mode):
    seen: list = []
    async with connect(serve_command(config), mode=mode, timeout=30, sampling_callback=make_model(seen)) as client:
        result = await client.call_tool("haiku", {"topic": "rain"})
    assert not result.is_error, result.content[0].text
    assert result.content[0].text == "echo: A haiku about rain"
    assert result.meta["mcp-gateway/call"]["model"] == "client-model"
    [params] = seen
    assert params.system_prompt == "You write haiku." and params.max_tokens == 60 and params.temperature == 0.7
    assert params.model_preferences.hints[0].name == "claude-sonnet"


@pytest.mark.parametrize(("path", "mode"), [("/mcp", "legacy"), ("/mcp", "auto"), ("/sse", "legacy")])
async def test_the_clients_model_answers_over_http(config, path, mode):
    seen: list = []
    with http_gateway(config) as server:
        async with connect(server.base_url + path, mode=mode, timeout=30,
                           sampling_callback=make_model(seen)) as client:
            result = await client.call_tool("haiku", {"topic": "snow"})
    assert result.content[0].text == "echo: A haiku about snow"


async def test_a_client_without_sampling_gets_a_clear_error(config):
    async with connect(serve_command(config), mode="legacy", timeout=30) as client:
        result = await client.call_tool("haiku", {"topic": "fog"})
    assert result.is_error
    assert result.content[0].text == "provider 'client' failed: the connected client does not offer sampling"
