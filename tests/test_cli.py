"""The command line, run as a user runs it: a real `mcp-gateway` process."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import textwrap

from tests.conftest import EXAMPLE, serve_command

GATEWAY = [sys.executable, "-m", "mcp_gateway"]
SERVE = shlex.join(serve_command(EXAMPLE))


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GATEWAY, *args], capture_output=True, text=True, timeout=timeout)


def test_help_reads_like_documentation():
    top = run("--help")
    assert top.returncode == 0
    for command in ("serve", "validate", "render", "schema", "tools", "call", "prompts", "prompt", "resources", "read"):
        assert command in top.stdout
    assert "mcp-gateway call" in top.stdout  # an example, not just a list
    call = run("call", "--help")
    assert "Exits with status 1 when the tool reports an error." in call.stdout


def test_validate_prints_a_summary_table():
    result = run("validate", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "OK (2 files)" in result.stdout
    assert "classify_ticket" in result.stdout and "structured" in result.stdout
    assert "draft_release_notes" in result.stdout and "draft" in result.stdout
    assert "glossary://{term}" in result.stdout
    summary = json.loads(run("validate", str(EXAMPLE), "--json").stdout)
    assert summary["ok"] is True and len(summary["tools"]) == 9  # every version: summarize has two


def test_validate_warns_about_unknown_unverified_and_stale_prices(tmp_path):
    """A price that costs could be wrong with is a warning (stderr, `warnings` in JSON), not an error."""
    config = tmp_path / "gateway.yaml"
    config.write_text(textwrap.dedent("""
        format: mcp-gateway/1
        providers:
          cloud: {kind: openai, base_url: "http://127.0.0.1:9/v1"}
          offline: {kind: mock}
        models:
          mixed:
            targets:
              - {provider: cloud, model: mistral-large-latest}
              - {provider: cloud, model: my-own-finetune}
              - {provider: cloud, model: claude-3-haiku-20240307}
              - {provider: offline, model: mock-1}
          unused: {provider: cloud, model: gpt-4-turbo}
        prices:
          cloud/gpt-4o: {input: 2.5, output: 10}
        tools:
          - name: ask
            description: Ask.
            model: mixed
            messages: [{role: user, content: hi}]
    """))
    result = run("validate", str(config))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2, result.stderr
    assert "cloud/mistral-large-latest (model 'mixed')" in warnings[0] and "unverified" in warnings[0]
    assert "cloud/my-own-finetune" in warnings[1] and "no price is known" in warnings[1]
    assert "gpt-4-turbo" not in result.stderr  # no served tool uses it
    summary = json.loads(run("validate", str(config), "--json").stdout)
    assert summary["ok"] is True and [w.split(":")[0] for w in summary["warnings"]] == [
        "price of cloud/mistral-large-latest (model 'mixed')", "price of cloud/my-own-finetune (model 'mixed')"]


def test_render_shows_messages_without_calling_a_model():
    result = run("render", str(EXAMPLE), "summarize", "--arg", "text=Hello {{ x }}", "--arg", "sentences=2")
    assert result.returncode == 0, result.stderr
    assert "--- system ---" in result.stdout and "--- user ---" in result.stdout
    assert "at most 2 sentences" in result.stdout and "Hello {{ x }}" in result.stdout
    as_json = json.loads(run("render", str(EXAMPLE), "draft_release_notes", "--arg", 'changes:=["a","b"]',
                             "--json").stdout)
    assert as_json == [{"role": "user", "content": "Write release notes for:\n- a\n- b\n"}]


def test_render_reports_argument_errors():
    result = run("render", str(EXAMPLE), "summarize", "--arg", "sentences=0")
    assert result.returncode == 1
    assert "$: 'text' is a required property" in result.stderr
    assert "$.sentences: 0 is less than the minimum of 1" in result.stderr


def test_tools_and_call_against_a_stdio_server():
    listed = run("tools", SERVE)
    assert listed.returncode == 0, listed.stderr
    assert "summarize" in listed.stdout and "text, sentences?, audience?" in listed.stdout
    called = run("call", SERVE, "classify_ticket", "--arg", "ticket=I was charged twice")
    assert called.returncode == 0, called.stderr
    assert set(json.loads(called.stdout)) >= {"category", "urgency", "sentiment", "confidence"}
    legacy = run("call", "--stdio", SERVE, "--legacy", "--json", "summarize", "--args", '{"text": "hi"}')
    assert json.loads(legacy.stdout)["isError"] is False


def test_call_exit_codes():
    bad_args = run("call", SERVE, "summarize", "--arg", "sentences=99")
    assert bad_args.returncode == 1
    assert "$.sentences: 99 is greater than the maximum of 10" in bad_args.stderr
    unknown = run("call", SERVE, "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == ("error: unknown tool 'nope' (available: chat, classify_ticket, extract_entities, "
                                      "find_names, rewrite_tone, session_end, session_start, session_state, summarize, "
                                      "translate)")
    typo = run("call", SERVE, "sumarize", "--arg", "text=x")
    assert typo.returncode == 1 and typo.stderr.strip() == "error: unknown tool 'sumarize'; did you mean 'summarize'?"
    no_server = run("tools", "/nonexistent/server-binary")
    assert no_server.returncode == 1 and no_server.stderr.startswith("error: connection failed")


def test_prompt_resources_and_read():
    assert "review_draft" in run("prompts", SERVE).stdout
    prompt = run("prompt", SERVE, "review_draft", "--arg", "draft=Some text")
    assert prompt.returncode == 0 and "Some text" in prompt.stdout
    resources = run("resources", SERVE)
    assert "docs://style-guide" in resources.stdout and "glossary://{term}" in resources.stdout
    read = run("read", SERVE, "glossary://latency")
    assert read.stdout.startswith("# latency")


def test_provider_http_client_logs_only_warnings_unless_debug():
    """The gateway logs one line per call; httpx2's own INFO line per provider request only at debug."""
    probe = ("import logging, sys; from mcp_gateway.cli._main import _setup_logging; _setup_logging(sys.argv[1]); "
             "print(logging.getLogger('httpx2').isEnabledFor(logging.INFO), "
             "logging.getLogger('mcp_gateway.calls').isEnabledFor(logging.INFO))")
    levels = {}
    for level in ("info", "debug"):
        out = subprocess.run([sys.executable, "-c", probe, level], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        levels[level] = out.stdout.split()
    assert levels == {"info": ["False", "True"], "debug": ["True", "True"]}


def test_a_server_command_naming_mcp_gateway_runs_without_an_activated_virtualenv(tmp_path):
    """`.venv/bin/mcp-gateway call "mcp-gateway serve ..."` with the venv's bin not on PATH: the
    server starts with the interpreter the client runs on (CLI and library alike)."""
    path = "/usr/bin:/bin"  # no virtualenv bin directory on it
    env = {"PATH": path, "HOME": str(tmp_path)}
    target = f"mcp-gateway serve {shlex.quote(str(EXAMPLE))}"
    called = subprocess.run([sys.executable, "-m", "mcp_gateway", "call", target, "summarize", "--arg", "text=Ada wrote notes."],
                            capture_output=True, text=True, timeout=120, env=env)
    assert called.returncode == 0, called.stderr
    assert "Ada wrote notes." in called.stdout
    library = ("import anyio, sys; from mcp_gateway.client import connect\n"
               "async def main():\n"
               "    async with connect(sys.argv[1], timeout=60) as client:\n"
               "        print([t.name for t in await client.list_tools()][:1])\n"
               "anyio.run(main)\n")
    listed = subprocess.run([sys.executable, "-c", library, target], capture_output=True, text=True, timeout=120, env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip().startswith("['")
