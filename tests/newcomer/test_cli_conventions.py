"""One flag convention and help text everywhere; HTTP refusals said plainly; sessions from scripts."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
from click.testing import CliRunner

from mcp_gateway.cli import main
from tests.conftest import EXAMPLE, http_gateway, serve_command

GATEWAY = [sys.executable, "-m", "mcp_gateway"]


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_option_has_help_and_one_spelling_per_meaning() -> None:
    for path, command in _commands(main):
        if path == ("mock-llm",):
            continue  # hands its arguments to the mock server's own parser
        options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
        for option in options:
            assert option.help, f"{' '.join(path)} {option.opts[0]} has no help text"
            if "--json" in option.opts:
                assert option.is_flag, f"{' '.join(path)}: --json means JSON output, a flag"
            if "--args" in option.opts:
                assert option.metavar == "OBJECT", path
            assert "--json-args" not in option.opts, f"{' '.join(path)} uses an old spelling"
            if "--output" in option.opts:  # a file to write; JSON output is --json everywhere
                assert not isinstance(option.type, click.Choice), (
                    f"{' '.join(path)}: --output FORMAT is --json"
                )


def test_arguments_are_given_the_same_way_to_render_call_and_prompt() -> None:
    runner = CliRunner()
    rendered = runner.invoke(
        main, ["render", str(EXAMPLE), "summarize", "--args", '{"text": "hi"}', "--json"]
    )
    assert rendered.exit_code == 0 and '"content"' in rendered.output, rendered.output
    bad = runner.invoke(main, ["render", str(EXAMPLE), "summarize", "--args", "{nope"])
    assert bad.exit_code == 2 and "Invalid value for --args: not valid JSON" in bad.output
    old = runner.invoke(main, ["render", str(EXAMPLE), "summarize", "--arg", "text=hi", "--output", "json"])
    assert old.exit_code == 0 and old.output.lstrip().startswith("["), (
        old.output
    )  # the old spelling still works
    serve = shlex.join(serve_command(EXAMPLE))
    called = subprocess.run(
        [*GATEWAY, "call", serve, "summarize", "--args", "{nope"], capture_output=True, text=True, timeout=60
    )
    assert called.returncode == 2 and "Invalid value for --args" in called.stderr


def test_refusals_of_an_http_gateway_are_said_plainly(tmp_path: Path) -> None:
    # The whole example (its included tool files, partials and documents) with auth added, so the
    # config stays valid whatever the example refers to.
    examples = shutil.copytree(EXAMPLE.parent, tmp_path / "examples")
    config = examples / EXAMPLE.name
    config.write_text(EXAMPLE.read_text() + "auth: {keys_file: keys.json}\n")
    with http_gateway(config) as server:
        missing = subprocess.run(
            [*GATEWAY, "tools", server.base_url + "/mcp"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert missing.returncode == 1
        assert missing.stderr.strip() == "error: 401 Unauthorized: pass --token or set MCP_GATEWAY_TOKEN"
        wrong = subprocess.run(
            [*GATEWAY, "tools", server.base_url + "/sse", "--token", "mgw_nope_nope"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert wrong.stderr.strip() == "error: 401 Unauthorized: pass --token or set MCP_GATEWAY_TOKEN"
        nowhere = subprocess.run(
            [*GATEWAY, "tools", server.base_url + "/nowhere"], capture_output=True, text=True, timeout=60
        )
        assert nowhere.returncode == 1 and nowhere.stderr.startswith(
            "error: 404 Not Found: no MCP endpoint at this URL"
        )


def test_call_continues_a_session_over_http(tmp_path: Path) -> None:
    with http_gateway(EXAMPLE) as server:
        url = server.base_url + "/mcp"
        first = subprocess.run(
            [*GATEWAY, "call", url, "chat", "--arg", "message=My name is Ada.", "--session", "new"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert first.returncode == 0, first.stderr
        handle = first.stderr.strip().removeprefix("session: ")
        assert handle.startswith("sess_")
        second = subprocess.run(
            [*GATEWAY, "call", url, "chat", "--arg", "message=And again.", "--session", handle],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 0, second.stderr
        history = subprocess.run(
            [*GATEWAY, "read", url, f"session://{handle}/history.md"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "2 turns" in history.stdout and history.stdout.index("My name is Ada.") < history.stdout.index(
            "And again."
        ), history.stdout
        unknown = subprocess.run(
            [*GATEWAY, "call", url, "chat", "--arg", "message=x", "--session", "sess_nope"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert unknown.returncode == 1 and "Unknown session" in unknown.stderr


def test_a_stdio_servers_log_shows_only_with_verbose() -> None:
    serve = shlex.join([sys.executable, "-m", "mcp_gateway", "serve", str(EXAMPLE), "--log-level", "info"])
    quiet = subprocess.run([*GATEWAY, "tools", serve], capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = subprocess.run([*GATEWAY, "tools", serve, "--verbose"], capture_output=True, text=True, timeout=60)
    assert loud.returncode == 0 and "INFO mcp_gateway: loaded 7 tools" in loud.stderr, loud.stderr
    assert "Warning" not in loud.stderr
