"""Reloading a config while serving: valid changes reach every client of either era; invalid ones
are refused and the last good config keeps serving."""

from __future__ import annotations

import os
import signal
import textwrap

import anyio
import pytest

from mcp_gateway.client import connect
from tests.conftest import http_gateway, serve_command

pytestmark = pytest.mark.anyio

BASE = textwrap.dedent("""
    format: mcp-gateway/1
    providers: {offline: {kind: mock}}
    models: {m: {provider: offline, model: mock-1}}
    tools:
      - {name: first, description: The first tool., model: m, messages: [{role: user, content: one}]}
""")
ADDED = BASE + "  - {name: second, description: Added later., model: m, messages: [{role: user, content: two}]}\n"
BROKEN = BASE + "  - {name: third, description: Broken., model: nope, messages: [{role: user, content: x}]}\n"


async def _next_change(changes) -> str:
    with anyio.fail_after(15):
        return await changes.__anext__()


@pytest.mark.parametrize(("path", "mode"), [("/mcp", "legacy"), ("/mcp", "auto"), ("/sse", "legacy")])
async def test_file_change_notifies_http_clients(tmp_path, path, mode):
    config = tmp_path / "g.yaml"
    config.write_text(BASE)
    with http_gateway(config, "--watch") as server:
        async with connect(server.base_url + path, mode=mode, timeout=30) as client:
            assert [t.name for t in await client.list_tools()] == ["first"]
            async with client.changes() as changes:
                config.write_text(ADDED)
                assert await _next_change(changes) == "tools"
                assert [t.name for t in await client.list_tools()] == ["first", "second"]
                assert not (await client.call_tool("second", {})).is_error
                # A broken config is refused: nothing changes, the old tools keep working.
                config.write_text(BROKEN)
                with anyio.fail_after(15):
                    while not any("reload refused" in line for line in server.log):
                        await anyio.sleep(0.05)
                assert [t.name for t in await client.list_tools()] == ["first", "second"]
        assert any("unknown model 'nope'" in line for line in server.log)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sighup_reloads_a_stdio_server(tmp_path, mode):
    config = tmp_path / "g.yaml"
    config.write_text(BASE)
    async with connect(serve_command(config), mode=mode, timeout=30) as client:
        async with client.changes() as changes:
            config.write_text(ADDED)
            # The SDK client does not expose the child's pid; find it by its command line.
            os.kill(_pid_of(str(config)), signal.SIGHUP)
            assert await _next_change(changes) == "tools"
        assert {t.name for t in await client.list_tools()} == {"first", "second"}


def _pid_of(needle: str) -> int:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read().decode(errors="replace")
            except OSError:
                continue
            if needle in cmdline and "serve" in cmdline:
                return int(entry)
    raise AssertionError(f"no process serving {needle}")
