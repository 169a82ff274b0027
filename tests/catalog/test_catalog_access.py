"""Who may read the catalog without `auth`: this machine only, whatever address the app binds.
The gateway's real ASGI app, driven in-process with the client address set per request."""

from __future__ import annotations

import httpx2
import pytest

from mcp_gateway.server import GatewayServer, HttpSettings
from tests.conftest import EXAMPLE

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _get(client_host: str, path: str) -> httpx2.Response:
    app = GatewayServer.from_config(EXAMPLE).asgi_app(HttpSettings(host="0.0.0.0"))
    transport = httpx2.ASGITransport(app=app, client=(client_host, 40000))
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as client:
        return await client.get(path)


async def test_without_auth_only_this_machine_reads_the_catalog():
    for path in ("/catalog", "/catalog/tools/summarize", "/catalog/fragment", "/catalog/usage.json"):
        remote = await _get("203.0.113.7", path)
        assert remote.status_code == 403 and "this machine only" in remote.text, path
        assert "summarize" not in remote.text
        local = await _get("127.0.0.1", path)
        assert local.status_code == 200, (path, local.text)
    page = await _get("::1", "/catalog")
    assert "summarize" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert page.headers["cache-control"] == "no-store"


async def test_unknown_tool_and_static_files():
    missing = await _get("127.0.0.1", "/catalog/tools/no-such-tool")
    assert missing.status_code == 404 and "Not found" in missing.text
    hostile = await _get("127.0.0.1", "/catalog/tools/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert hostile.status_code == 404 and "<img" not in hostile.text and "&lt;img src=x" in hostile.text
    script = await _get("127.0.0.1", "/catalog/static/catalog.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert (await _get("127.0.0.1", "/catalog/static/..%2F_catalog_page.py")).status_code == 404
    redirect = await _get("127.0.0.1", "/")
    assert redirect.status_code == 307 and redirect.headers["location"] == "/catalog"
