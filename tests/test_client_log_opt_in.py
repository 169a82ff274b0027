"""A 2026-07-28 client hears of a call through `notifications/message` only when its request opted
in (the reserved `_meta` log level) at the message's level or below; a request that did not opt in
costs the gateway no message at all (most requests carry no opt-in)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.session import ServerSession

from mcp_gateway.server._mcp import build_server
from mcp_gateway.server._serve import GatewayServer

# Log notifications are deprecated at 2026-07-28 (SEP-2577), yet still delivered on opt-in.
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "gateway.yaml"


async def _call_with(level: str | None) -> tuple[list[Any], str]:
    heard: list[Any] = []

    async def on_log(params: Any) -> None:
        heard.append(params)

    server = build_server(GatewayServer.from_config(EXAMPLE).live)
    async with Client(server, mode="auto", cache=None, log_level=level, logging_callback=on_log) as client:
        result = await client.call_tool("summarize", {"text": "The board meets on Friday."})
        version = client.protocol_version
    assert not result.is_error
    return heard, version


@pytest.mark.parametrize(("level", "expected"), [(None, 0), ("warning", 0), ("info", 1), ("debug", 1)])
def test_a_modern_client_hears_of_a_call_only_at_the_level_it_opted_in(level: str | None, expected: int) -> None:
    heard, version = anyio.run(_call_with, level)
    assert version == "2026-07-28"
    assert len(heard) == expected
    if expected:
        [message] = heard
        assert (message.level, message.logger) == ("info", "mcp-gateway")
        assert message.data["tool"] == "summarize" and message.data["model"] == "mock-1"


def test_no_message_is_built_for_a_request_that_did_not_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    original = ServerSession.send_log_message

    async def counting(self: ServerSession, level: Any, *args: Any, **kwargs: Any) -> None:
        sent.append(level)
        await original(self, level, *args, **kwargs)

    monkeypatch.setattr(ServerSession, "send_log_message", counting)
    heard, _ = anyio.run(_call_with, None)
    assert heard == [] and sent == []
    heard, _ = anyio.run(_call_with, "info")
    assert len(heard) == 1 and sent == ["info"]
