"""Fixtures of the routing tests: the anyio backend and one in-process mock LLM server per module."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest
from starlette.applications import Starlette

from servers.mock_llm import create_app, running_mock_llm


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def mock_app() -> Starlette:
    return create_app()


@pytest.fixture(scope="module")
async def mock_root(mock_app: Starlette) -> AsyncIterator[str]:
    async with running_mock_llm(mock_app) as url:
        yield url


@pytest.fixture(scope="module")
async def mock_client(mock_root: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=mock_root, timeout=10, trust_env=False) as client:
        yield client
