"""A Python user serves a config with auth through `mcp_gateway.server.GatewayServer`, without the
CLI: the app it builds refuses calls without a key and answers with one, on MCP and REST alike."""

from __future__ import annotations

import textwrap

import httpx2
import pytest

from mcp_gateway import ConfigError
from mcp_gateway.security import KeyStore
from mcp_gateway.server import GatewayServer, HttpSettings

pytestmark = pytest.mark.anyio

CONFIG = textwrap.dedent("""
    format: mcp-gateway/1
    providers: {offline: {kind: mock}}
    models: {default: {provider: offline, model: mock-1}}
    auth: {keys_file: keys.json}
    tools:
      - name: echo
        description: Say it back.
        model: default
        input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
        messages: [{role: user, content: "{{ text }}"}]
""")


async def test_a_library_user_serves_with_auth(tmp_path):
    (tmp_path / "gateway.yaml").write_text(CONFIG)
    _, key = KeyStore(tmp_path / "keys.json").create("lib", ["tools:*"])
    server = GatewayServer.from_config(tmp_path / "gateway.yaml")
    app = server.asgi_app(HttpSettings())
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        refused = await http.post("/v1/tools/echo", json={"text": "hi"})
        answered = await http.post("/v1/tools/echo", json={"text": "hi there"},
                                   headers={"Authorization": f"Bearer {key}"})
        mcp = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                              headers={"Accept": "application/json, text/event-stream"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert answered.status_code == 200 and "hi there" in answered.json()["text"]
    assert mcp.status_code == 401
    await server.live.gateway.aclose()


def test_a_broken_config_raises_every_issue(tmp_path):
    (tmp_path / "gateway.yaml").write_text(CONFIG.replace("keys_file: keys.json", "jwt: {secret: '${env:NOPE_UNSET}'}"))
    with pytest.raises(ConfigError, match="NOPE_UNSET"):
        GatewayServer.from_config(tmp_path / "gateway.yaml", environ={})
