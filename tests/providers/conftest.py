"""Fixtures for the provider adapter tests: one in-process mock LLM (real loopback HTTP) per module.

The mock requires an API key header (`require_auth=True`), so every test also proves the adapter
sends its credential the way the provider expects; history and counters are reset per test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette

from mcp_gateway.providers import provider_kinds
from mcp_gateway.providers._http import HttpProvider
from servers.mock_llm import create_app, running_mock_llm
from tests.providers.support import KEY, base_url_for


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def mock_app() -> Starlette:
    return create_app(require_auth=True)


@pytest.fixture(scope="module")
async def mock_root(mock_app: Starlette) -> AsyncIterator[str]:
    async with running_mock_llm(mock_app) as url:
        yield url


@dataclass
class Mock:
    """The running mock server: its URL and its test API."""

    root: str
    app: Starlette
    client: httpx2.AsyncClient

    async def requests(self) -> list[dict[str, Any]]:
        return (await self.client.get("/_mock/requests")).json()["requests"]

    async def last_body(self) -> Any:
        return (await self.requests())[-1]["body"]

    async def stats(self) -> dict[str, int]:
        return (await self.client.get("/_mock/stats")).json()


@pytest.fixture(scope="module")
async def mock_client(mock_root: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=mock_root, timeout=10, trust_env=False) as client:
        yield client


@pytest.fixture
def mock(mock_app: Starlette, mock_root: str, mock_client: httpx2.AsyncClient) -> Mock:
    mock_app.state.mock_llm.reset()
    return Mock(mock_root, mock_app, mock_client)


@pytest.fixture
async def make(mock: Mock) -> AsyncIterator[Callable[..., HttpProvider]]:
    """Build an adapter of `kind` against the mock; `fault` becomes the `x-mock-fault` header."""
    built: list[HttpProvider] = []

    def factory(kind: str, *, fault: str | None = None, headers: dict[str, str] | None = None,
                **settings: Any) -> HttpProvider:
        extra = dict(headers or {})
        if fault:
            extra["x-mock-fault"] = fault
        provider = provider_kinds()[kind](
            f"{kind}-test", {"trust_env": False, **settings},
            base_url=base_url_for(kind, mock.root), api_key=KEY, headers=extra,
        )
        built.append(provider)
        return provider

    yield factory
    for provider in built:
        await provider.aclose()
