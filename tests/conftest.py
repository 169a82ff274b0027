"""Shared fixtures: the anyio backend, paths, and gateway servers started as real subprocesses."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from mcp_gateway.client import GatewayClient, connect

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "gateway.yaml"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def serve_command(config: Path | str) -> list[str]:
    """The command an MCP client runs to start the gateway over stdio."""
    return [sys.executable, "-m", "mcp_gateway", "serve", str(config), "--log-level", "warning"]


@pytest.fixture(params=["legacy", "auto"], ids=["handshake-era", "2026-07-28"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both protocol eras: the initialize handshake and the 2026-07-28 per-request protocol."""
    return request.param


@pytest.fixture
def stdio_gateway(mode: str) -> Callable[..., Any]:
    """Start `mcp-gateway serve CONFIG` as a subprocess and connect the SDK-based client to it."""

    @asynccontextmanager
    async def start(config: Path | str = EXAMPLE) -> AsyncIterator[GatewayClient]:
        async with connect(serve_command(config), mode=mode, timeout=30) as client:  # type: ignore[arg-type]
            yield client

    return start
