"""Graceful shutdown: in-flight calls finish within the grace period; past it they end cleanly."""

from __future__ import annotations

import signal
import textwrap

import anyio
import pytest

from mcp_gateway.client import ClientError, connect
from tests.conftest import http_gateway

pytestmark = pytest.mark.anyio


def _config(tmp_path, chunk_ms: int):
    """The mock streams its 8-word answer at once-per-`chunk_ms`, the first word immediately: a
    progress notification proves the call is in flight, and the rest takes 7 x `chunk_ms`."""
    path = tmp_path / "slow.yaml"
    path.write_text(textwrap.dedent(f"""
        format: mcp-gateway/1
        providers: {{slow: {{kind: mock, settings: {{chunk_ms: {chunk_ms}}}}}}}
        models: {{m: {{provider: slow, model: mock-1}}}}
        tools:
          - {{name: slow, description: Slow., model: m, messages: [{{role: user, content: hello}}]}}
    """))
    return path


def first_word(event: anyio.Event):
    """A progress callback that sets `event` when the first streamed word arrives."""

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        event.set()

    return on_progress


async def test_sigterm_lets_in_flight_calls_finish(tmp_path):
    with http_gateway(_config(tmp_path, 200), "--shutdown-grace", "10") as server:
        async with connect(server.base_url + "/mcp", mode="legacy", timeout=30) as client:
            # The SDK client fetches tools/list to check a result unless it knows the tool already;
            # after the signal the server accepts no new requests.
            await client.list_tools()
            async with anyio.create_task_group() as tg:
                results = []
                in_flight = anyio.Event()

                async def call() -> None:
                    results.append(await client.call_tool("slow", {},
                                                          progress_callback=first_word(in_flight)))

                tg.start_soon(call)
                with anyio.fail_after(15):
                    await in_flight.wait()
                server.proc.send_signal(signal.SIGTERM)
        assert len(results) == 1 and not results[0].is_error
        with anyio.fail_after(15):
            while server.proc.poll() is None:
                await anyio.sleep(0.05)
    # uvicorn re-raises the signal after a clean shutdown, as a well-behaved daemon should.
    assert server.proc.returncode in (0, -signal.SIGTERM)
    assert any("Application shutdown complete" in line for line in server.log)
    assert any("waiting up to 10 s for 1 call(s) in flight" in line for line in server.log)


async def test_calls_past_the_grace_period_end_with_an_error_not_a_hang(tmp_path):
    with http_gateway(_config(tmp_path, 60_000), "--shutdown-grace", "1") as server:
        errors: list[ClientError] = []
        in_flight = anyio.Event()
        with anyio.fail_after(20):
            async with connect(server.base_url + "/mcp", mode="legacy", timeout=30) as client:
                await client.list_tools()

                async def call() -> None:
                    try:
                        await client.call_tool("slow", {}, progress_callback=first_word(in_flight))
                    except ClientError as exc:
                        errors.append(exc)

                async with anyio.create_task_group() as tg:
                    tg.start_soon(call)
                    await in_flight.wait()
                    server.proc.send_signal(signal.SIGTERM)
        assert errors == []  # the call ended with an error result (test_shutdown_grace.py); nothing hung
        with anyio.fail_after(15):
            while server.proc.poll() is None:
                await anyio.sleep(0.05)
        assert any("cancelling 1 call(s) still in flight" in line for line in server.log)
