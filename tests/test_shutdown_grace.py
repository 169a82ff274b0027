"""Past --shutdown-grace a call still running is cancelled and answers with an error result that
says so (a JSON-RPC result with isError), on every handshake-era transport, before the streams
close: the client learns why instead of seeing a dropped connection."""

from __future__ import annotations

import signal
import textwrap

import anyio
import pytest

from mcp_gateway.client import ClientError, connect
from tests.conftest import http_gateway

pytestmark = pytest.mark.anyio


def _config(tmp_path):
    """The mock sends its first word at once, then one a minute: a progress notification proves
    the call is in flight, and it will not finish within the grace period."""
    path = tmp_path / "slow.yaml"
    path.write_text(textwrap.dedent("""
        format: mcp-gateway/1
        providers: {slow: {kind: mock, settings: {chunk_ms: 60000}}}
        models: {m: {provider: slow, model: mock-1}}
        tools:
          - {name: slow, description: Slow., model: m, messages: [{role: user, content: hello}]}
    """))
    return path


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
async def test_calls_past_the_grace_period_get_an_error_result(tmp_path, path):
    with http_gateway(_config(tmp_path), "--shutdown-grace", "1") as server:
        results = []
        errors: list[ClientError] = []
        in_flight = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            in_flight.set()

        with anyio.fail_after(30):
            async with connect(server.base_url + path, mode="legacy", timeout=30) as client:
                await client.list_tools()

                async def call() -> None:
                    try:
                        results.append(await client.call_tool("slow", {}, progress_callback=on_progress))
                    except ClientError as exc:
                        errors.append(exc)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(call)
                    await in_flight.wait()
                    server.proc.send_signal(signal.SIGTERM)
            while server.proc.poll() is None:
                await anyio.sleep(0.05)
    assert errors == [] and len(results) == 1
    assert results[0].is_error
    assert "shutting down" in results[0].content[0].text and "retry" in results[0].content[0].text
    assert any("cancelling 1 call(s) still in flight" in line for line in server.log)
