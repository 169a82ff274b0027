"""A stdio server started by our client inherits the caller's environment; `env=` / `-e` add to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_gateway.client import ConnectError, connect
from tests.conftest import serve_command

pytestmark = pytest.mark.anyio

CONFIG = """\
format: mcp-gateway/1
providers:
  remote: {kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: "${env:NEWCOMER_TEST_KEY}"}
models:
  default: {provider: remote, model: m}
tools:
  - name: echo
    description: Needs the key to be served at all.
    input_schema: {type: object, properties: {text: {type: string}}}
    messages: [{role: user, content: "{{ text }}"}]
    model: default
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    return path


async def test_connect_passes_the_callers_environment(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWCOMER_TEST_KEY", "from-the-caller")
    async with connect(serve_command(config), timeout=30) as client:
        assert [t.name for t in await client.list_tools()] == ["echo"]


async def test_env_adds_to_the_environment(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWCOMER_TEST_KEY", raising=False)
    async with connect(serve_command(config), timeout=30, env={"NEWCOMER_TEST_KEY": "given"}) as client:
        assert [t.name for t in await client.list_tools()] == ["echo"]


async def test_without_the_variable_the_server_refuses(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWCOMER_TEST_KEY", raising=False)
    with pytest.raises(ConnectError):
        async with connect(serve_command(config), timeout=30, errlog=open(os.devnull, "w")):
            pass


async def test_quiet_by_default_and_the_servers_words_on_failure(
    config: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWCOMER_TEST_KEY", "x")
    info = [sys.executable, "-m", "mcp_gateway", "serve", str(config), "--log-level", "info"]
    async with connect(info, timeout=30) as client:
        await client.list_tools()
    assert capfd.readouterr().err == ""  # the server's INFO lines stay out of a library user's terminal
    monkeypatch.delenv("NEWCOMER_TEST_KEY")
    with pytest.raises(ConnectError) as failed:
        async with connect(info, timeout=30):
            pass
    assert "environment variable NEWCOMER_TEST_KEY is not set" in str(failed.value)
    assert capfd.readouterr().err == ""


def test_cli_inherits_and_adds_environment(config: Path) -> None:
    serve = " ".join(serve_command(config))
    env = {k: v for k, v in os.environ.items() if k != "NEWCOMER_TEST_KEY"}
    base = [sys.executable, "-m", "mcp_gateway", "tools", serve]
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 1 and "NEWCOMER_TEST_KEY is not set" in refused.stderr
    added = subprocess.run(
        [*base, "-e", "NEWCOMER_TEST_KEY=x"], capture_output=True, text=True, timeout=60, env=env
    )
    assert added.returncode == 0, added.stderr
    inherited = subprocess.run(
        base, capture_output=True, text=True, timeout=60, env={**env, "NEWCOMER_TEST_KEY": "x"}
    )
    assert inherited.returncode == 0 and "echo" in inherited.stdout, inherited.stderr
