"""The `mcp-gateway` command line. Each command is a thin layer over the library."""

from __future__ import annotations

import atexit
import gc
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

import click

from .. import __version__
from .._errors import ArgumentError, ConfigError, RenderError, ToolNotFoundError
from ._args import arguments_options, collect_arguments
from ._chat import chat
from ._client import CLIENT_COMMANDS
from ._dev import dev
from ._init import init
from ._install import install
from ._group import GatewayGroup
from ._keys import keys
from ._lifecycle import lifecycle_commands
from ._output import echo_json
from ._sessions import sessions
from ._validate import validate
from ._target import closest, fail

__all__ = ["main"]

LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)


def _setup_logging(level: str, *, json_logs: bool = False, redactor: Any = None) -> None:
    """Logs go to stderr, always: in stdio mode stdout belongs to the protocol. Known secrets are
    redacted from every record."""
    from ..observability.logs import BatchingHandler, ClientAbortFilter, json_log_handler
    from ..security import RedactingFilter, Redactor

    redactor = redactor or Redactor()
    if json_logs:
        writer = json_log_handler(sys.stderr, redactor=redactor)
    else:
        writer = logging.StreamHandler(sys.stderr)
        writer.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        writer.addFilter(ClientAbortFilter())
        writer.addFilter(RedactingFilter(redactor))
    batched = BatchingHandler(writer)  # formatting and the write leave the call path
    atexit.register(batched.close)  # flushes what is queued at exit
    logging.basicConfig(level=level.upper(), handlers=[batched], force=True)
    # httpx2 logs each provider request at INFO; the gateway's own line for the call already names
    # the route, provider, model, tokens and time, so below debug that line is noise (and about 8%
    # of a REST call's CPU at 50 in flight).
    logging.getLogger("httpx2").setLevel(logging.NOTSET if level.lower() == "debug" else logging.WARNING)

    def flush_then_die(signum: int, frame: Any) -> None:
        # uvicorn re-raises SIGTERM after a graceful shutdown; dying by it skips atexit, which
        # would lose the log lines still queued (the shutdown's own among them).
        batched.close()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, flush_then_die)


_fail = fail


def _load(config: str) -> Any:
    from .._gateway import load_gateway

    try:
        return load_gateway(config)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None


@click.group(cls=GatewayGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mcp-gateway")
def main() -> None:
    """Serve prompt tools written in YAML as MCP tools, prompts and resources.

    \b
    Start here:
      mcp-gateway init my-gateway              a new project that answers offline at once
      mcp-gateway validate gateway.yaml        check a config, list what it serves
      mcp-gateway render gateway.yaml TOOL     show the messages a call would send
      mcp-gateway serve gateway.yaml           serve it over stdio (for Claude Desktop, Cursor, ...)
      mcp-gateway call "mcp-gateway serve gateway.yaml" TOOL --arg text=hello

    Client commands (tools, call, chat, prompts, prompt, resources, read) take a TARGET: a command line
    that starts an MCP server over stdio, an http(s) URL (Streamable HTTP), or a URL ending in /sse
    (legacy SSE).
    """


# -- config commands ------------------------------------------------------------------------------


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
              help="stdio for local assistants; http serves Streamable HTTP at /mcp and legacy SSE at /sse.")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP: address to bind.")
@click.option("--port", type=int, default=8765, show_default=True, help="HTTP: port to bind (0 picks a free one).")
@click.option("--stateless", is_flag=True,
              help="HTTP: no Mcp-Session-Id; each POST stands alone (for horizontally scaled deployments).")
@click.option("--json-response", is_flag=True,
              help="HTTP: answer POSTs with plain JSON instead of an SSE stream (faster; no progress).")
@click.option("--allow-host", "allowed_hosts", multiple=True, metavar="HOST[:PORT]",
              help="HTTP: another Host header to accept (DNS-rebinding protection); a HOST without a port "
                   "allows any port. Repeatable.")
@click.option("--allow-origin", "allowed_origins", multiple=True, metavar="ORIGIN",
              help="HTTP: another Origin header to accept; repeatable.")
@click.option("--no-dns-rebinding-protection", is_flag=True,
              help="HTTP: accept any Host and Origin header (only behind a proxy that checks them).")
@click.option("--max-body-bytes", type=int, default=4 * 1024 * 1024, show_default=True,
              help="HTTP: largest accepted request body; larger ones get 413.")
@click.option("--shutdown-grace", type=float, default=10.0, show_default=True, metavar="SECONDS",
              help="HTTP: on SIGTERM/SIGINT, how long in-flight calls may finish before they are cancelled.")
@click.option("--session-idle-timeout", type=click.FloatRange(min=0, min_open=True), default=1800.0,
              show_default=True, metavar="SECONDS",
              help="HTTP: a handshake-era session with no request for this long is closed (its id then gets 404).")
@click.option("--max-sessions", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="HTTP: most handshake-era sessions (legacy SSE streams included) open at once; more get 503.")
@click.option("--max-sessions-per-caller", type=click.IntRange(min=1), default=100, show_default=True,
              help="HTTP with auth: most handshake-era sessions (legacy SSE streams included) one key or token "
              "holds open at once.")
@click.option("--header-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              metavar="SECONDS", help="HTTP: a connection that has not sent complete request headers this long "
              "after opening (or after its last response) is closed.")
@click.option("--watch", is_flag=True,
              help="Reload when a config file changes (SIGHUP always reloads); clients are notified.")
@click.option("--log-level", type=LOG_LEVELS, default="info", show_default=True, envvar="MCP_GATEWAY_LOG_LEVEL",
              help="Logging threshold; logs always go to stderr.")
def serve(config: str, transport: str, host: str, port: int, stateless: bool, json_response: bool,
          allowed_hosts: Sequence[str], allowed_origins: Sequence[str], no_dns_rebinding_protection: bool,
          max_body_bytes: int, shutdown_grace: float, session_idle_timeout: float, max_sessions: int,
          max_sessions_per_caller: int, header_timeout: float, watch: bool, log_level: str) -> None:
    """Serve CONFIG over stdio (default) or HTTP.

    Over stdio, stdout carries MCP messages only; logs go to stderr. Over HTTP one process serves
    Streamable HTTP at /mcp (both protocol eras), legacy HTTP+SSE at /sse and /messages/, and
    /healthz; it binds 127.0.0.1 unless told otherwise. An invalid config prints every error and
    exits with status 2 without serving anything. A reload (SIGHUP, or a file change with --watch)
    swaps in the new config only if it is valid, and tells connected clients what changed.
    """
    import anyio

    if transport == "stdio":  # before anything imports the SDK: it needs less of it over stdio
        from .._sdk import defer_package_inits

        defer_package_inits()
    from ..server import GatewayServer

    try:
        server = GatewayServer.from_config(config, watch=watch)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    gateway = server.live.gateway
    observability = gateway.loaded.observability if gateway.loaded is not None else None
    _setup_logging(log_level, json_logs=bool(observability and observability.value.json_logs),
                   redactor=server.protections.redactor)
    # Everything loaded so far lives as long as the process: keep it out of the garbage
    # collector's view, or each full collection walks it (62-68 ms pauses measured under load).
    # Only the young generations are collected first: a full collection here walked every object
    # of the process for 70-100 ms and found nothing, the collections that resume when loading
    # ends having already freed the little cyclic garbage a load leaves.
    gc.collect(1)
    gc.freeze()
    logging.getLogger("mcp_gateway").info(
        "loaded %d tools, %d prompts, %d resources from %s",
        len(gateway.catalog.tools), len(gateway.catalog.prompts.all()),
        len(gateway.catalog.resources.static()) + len(gateway.catalog.resources.templates()), config)
    if transport == "stdio":
        anyio.run(server.serve_stdio)
        return
    from ..server import HttpSettings  # the HTTP stack only when serving HTTP

    settings = HttpSettings(
        host=host, port=port, stateless=stateless, json_response=json_response,
        dns_rebinding_protection=not no_dns_rebinding_protection, allowed_hosts=tuple(allowed_hosts),
        allowed_origins=tuple(allowed_origins), max_body_bytes=max_body_bytes,
        graceful_shutdown_seconds=shutdown_grace, session_idle_timeout=session_idle_timeout,
        max_sessions=max_sessions, max_sessions_per_caller=max_sessions_per_caller, header_timeout=header_timeout,
    )
    try:
        anyio.run(lambda: server.serve_http(settings, log_level=log_level.lower()))
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it drained on: the shutdown was logged already
        raise SystemExit(130) from None


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--timeout", type=float, default=10.0, show_default=True, metavar="SECONDS",
              help="How long to wait for every process to answer.")
def reload(config: str, timeout: float) -> None:
    """Make every gateway process of CONFIG's cluster reload its config and notify its clients.

    Needs a `cluster:` section (one process: send it SIGHUP instead). Prints each process' answer
    and its config version; exits 1 if a process refused the new config or none answered.
    """
    import os

    import anyio

    from ..cluster import is_outage, open_link, request_reload
    from ..config import load_config

    try:
        loaded = load_config(config)
        link, issues = open_link(loaded, os.environ)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    if issues:
        click.echo(str(ConfigError(issues)), err=True)
        raise SystemExit(2)
    if link is None:
        _fail(f"{config} has no `cluster:` section: reload a single process with SIGHUP (kill -HUP PID)", 2)
    assert link is not None

    async def run() -> tuple[int, list[dict[str, Any]]]:
        try:
            return await request_reload(link, timeout_s=timeout)
        finally:
            await link.aclose()

    try:
        listening, answers = anyio.run(run)
    except Exception as exc:
        if not is_outage(exc):
            raise
        _fail(f"cannot reach the cluster's redis at {link.where}: {type(exc).__name__}")
    for answer in answers:
        outcome = "reloaded" if answer.get("ok") else "kept its previous config (see its log)"
        click.echo(f"process {answer.get('from')}: {outcome}, config version {answer.get('version')}")
    if listening == 0:
        _fail("no gateway process is listening on the cluster's channel")
    if len(answers) < listening:
        _fail(f"{listening - len(answers)} of {listening} processes did not answer within {timeout:g} s")
    if not all(a.get("ok") for a in answers):
        raise SystemExit(1)
    versions = {a.get("version") for a in answers}
    click.echo(f"{len(answers)} processes reloaded" + (f" (config version {versions.pop()})" if len(versions) == 1
                                                       else f"; versions differ: {', '.join(sorted(map(str, versions)))}"))



main.add_command(validate)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("tool")
@arguments_options
@click.option("--session-state", metavar="OBJECT",
              help="Tools with context: the session state the templates see, as a JSON object.")
@click.option("--history", "history_file", type=click.Path(dir_okay=False, exists=True),
              help="Tools with context: earlier turns, a JSON list of {input, output} objects (as "
                   "session://ID/history gives them).")
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON.")
@click.option("--output", type=click.Choice(["text", "json"]), hidden=True)  # old spelling of --json
def render(config: str, tool: str, pairs: Sequence[str], json_args: str | None, session_state: str | None,
           history_file: str | None, as_json: bool, output: str | None) -> None:
    """Print the messages TOOL would send for the given arguments, without calling a model.

    Works for draft tools too, so a prompt can be tuned before it is published. A tool with
    `context:` is shown in a session with the given state and history (empty by default).
    """
    gateway = _load(config)
    registry = gateway.catalog.tools
    try:  # the version a call would reach (TOOL may pin one: NAME.v2, NAME.staging) ...
        found = registry.resolve(tool)
    except ToolNotFoundError:  # ... else a draft's newest version
        found = next(iter(registry.versions(tool)), None)
    if found is None:
        _fail(f"{closest(tool, [t.name for t in gateway.catalog.tools.all()])} in {config}")
    args = collect_arguments(pairs, json_args, found.config.input_schema)
    from ._preview import preview_messages

    try:
        messages = preview_messages(found, args, session_state, history_file)
    except (ArgumentError, RenderError) as exc:
        _fail(str(exc))
    if as_json or output == "json":
        echo_json([{"role": m.role, "content": m.content} for m in messages])
        return
    for message in messages:
        click.echo(click.style(f"--- {message.role} ---", bold=True))
        click.echo(message.content)


@main.command()
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
def schema(output: str | None) -> None:
    """Print the JSON Schema of the config format (the source of schemas/gateway.schema.json)."""
    from ..config import config_json_schema

    text = json.dumps(config_json_schema(), indent=2, ensure_ascii=False) + "\n"
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=False)


main.add_command(sessions)
main.add_command(keys)
for _command in lifecycle_commands:
    main.add_command(_command)


@main.command("mock-llm", context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
              add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def mock_llm(args: Sequence[str]) -> None:
    """Run the offline mock LLM server (OpenAI, Anthropic, Gemini and Ollama wire formats).

    \b
    mcp-gateway mock-llm --port 8089 [--fault SPEC] [--latency-ms N]
    Point a provider's base_url at it (openai: http://127.0.0.1:8089/v1). --help lists every option.
    """
    from servers.mock_llm.__main__ import main as run_mock

    run_mock.main(list(args), prog_name="mcp-gateway mock-llm")


# -- client commands (their own modules) ----------------------------------------------------------

for _command in (*CLIENT_COMMANDS, chat, init, install, dev):
    main.add_command(_command)
