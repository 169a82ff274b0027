"""Fixtures for the companion-server tests: anyio on asyncio, one in-process mock LLM per module."""

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
async def mock_url(mock_app: Starlette) -> AsyncIterator[str]:
    async with running_mock_llm(mock_app) as url:
        yield url


@pytest.fixture
async def client(mock_app: Starlette, mock_url: str) -> AsyncIterator[httpx2.AsyncClient]:
    """A client on the shared server, whose history and counters are reset for each test."""
    mock_app.state.mock_llm.reset()
    async with httpx2.AsyncClient(base_url=mock_url, timeout=10, trust_env=False, verify=False) as http:
        yield http
