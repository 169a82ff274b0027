"""Progress while the model generates, and cancellation that stops the provider at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import anyio
import pytest

from mcp_gateway.client import connect
from tests.conftest import http_gateway, serve_command

pytestmark = pytest.mark.anyio

CONFIG = textwrap.dedent("""
    format: mcp-gateway/1
    providers:
      streaming: {kind: mock, settings: {chunk_ms: 5}}
      slow: {kind: mock, settings: {chunk_ms: 60000}}
    models:
      quick: {provider: streaming, model: mock-1}
      glacial: {provider: slow, model: mock-1}
    tools:
      - name: tell
        description: Streams an answer word by word.
        input_schema: {type: object, properties: {topic: {type: string}}, required: [topic]}
        messages: [{role: user, content: "Tell me about {{ topic }}"}]
        model: quick
      - name: slow
        description: Takes minutes to answer.
        messages: [{role: user, content: "one two three four five six seven eight nine ten"}]
        model: glacial
""")


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "streaming.yaml"
    path.write_text(CONFIG)
    return path


async def _progress_of(client) -> tuple[list[str], str]:
    pieces: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        assert progress == len(pieces) + 1  # increases by one per piece
        pieces.append(message or "")

    result = await client.call_tool("tell", {"topic": "otters"}, progress_callback=on_progress)
    return pieces, result.content[0].text


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_progress_streams_the_answer_over_stdio(config, mode):
    async with connect(serve_command(config), mode=mode, timeout=30) as client:
        pieces, text = await _progress_of(client)
    assert len(pieces) > 5 and "".join(pieces) == text


@pytest.mark.parametrize(("path", "mode"), [("/mcp", "legacy"), ("/mcp", "auto"), ("/sse", "legacy")])
async def test_progress_streams_the_answer_over_http(config, path, mode):
    with http_gateway(config) as server:
        async with connect(server.base_url + path, mode=mode, timeout=30) as client:
            pieces, text = await _progress_of(client)
    assert len(pieces) > 5 and "".join(pieces) == text


@pytest.mark.parametrize(("path", "mode"), [("/mcp", "legacy"), ("/mcp", "auto"), ("/sse", "legacy")])
async def test_cancelled_call_stops_the_provider(config, path, mode):
    with http_gateway(config) as server:
        async with connect(server.base_url + path, mode=mode, timeout=30) as client:
            first_piece = anyio.Event()

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                first_piece.set()

            async with anyio.create_task_group() as tg:
                async def call() -> None:
                    await client.call_tool("slow", {}, progress_callback=on_progress)

                tg.start_soon(call)
                with anyio.fail_after(10):
                    await first_piece.wait()
                tg.cancel_scope.cancel()
            # The connection stays usable after a cancelled call.
            assert not (await client.call_tool("tell", {"topic": "after"})).is_error
        with anyio.fail_after(10):
            while not any("tool=slow cancelled by the client" in line for line in server.log):
                await anyio.sleep(0.05)
        # its answer takes ten minutes: ending inside the guards above proves it was not waited for
        assert not any("tool=slow version" in line for line in server.log)  # it never completed


def test_cli_streams_text_as_it_arrives(config):
    result = subprocess.run(
        [sys.executable, "-m", "mcp_gateway", "call", "--stream", "--stdio", " ".join(serve_command(config)),
         "tell", "--arg", "topic=seals"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[mock-1] Offline answer") and "seals" in result.stdout
