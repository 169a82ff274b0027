"""The `mcp-gateway` command line. Each command is a thin layer over the library."""

from __future__ import annotations

import atexit
import gc
import json
import logging
import logging.handlers
import queue
import signal
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import click

from .. import __version__
from .._errors import ArgumentError, ClientError, ConfigError, RenderError, ToolNotFoundError
from ._args import collect_arguments
from ._keys import keys
from ._lifecycle import lifecycle_commands
from ._output import echo_json, table, to_jsonable
from ._sessions import sessions

__all__ = ["main"]

LOG_LEVELS = click.Choice(["debug", "info", "warning", "error"], case_sensitive=False)


class _DeferredQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer thread unformatted: formatting and the stderr write leave the
    call path (every tool call is logged, so this is on the hot path)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


def _setup_logging(level: str, *, json_logs: bool = False, redactor: Any = None) -> None:
    """Logs go to stderr, always: in stdio mode stdout belongs to the protocol. Known secrets are
    redacted from every record."""
    from ..observability.logs import ClientAbortFilter, json_log_handler
    from ..security import RedactingFilter, Redactor

    redactor = redactor or Redactor()
    if json_logs:
        writer = json_log_handler(sys.stderr, redactor=redactor)
    else:
        writer = logging.StreamHandler(sys.stderr)
        writer.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        writer.addFilter(ClientAbortFilter())
        writer.addFilter(RedactingFilter(redactor))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, writer)
    listener.start()
    atexit.register(listener.stop)  # flushes what is queued at exit
    logging.basicConfig(level=level.upper(), handlers=[_DeferredQueueHandler(records)], force=True)

    def flush_then_die(signum: int, frame: Any) -> None:
        # uvicorn re-raises SIGTERM after a graceful shutdown; dying by it skips atexit, which
        # would lose the log lines still queued (the shutdown's own among them).
        listener.stop()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, flush_then_die)


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def _load(config: str) -> Any:
    from .._gateway import load_gateway

    try:
        return load_gateway(config)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mcp-gateway")
def main() -> None:
    """Serve prompt tools written in YAML as MCP tools, prompts and resources.

    \b
    Start here:
      mcp-gateway validate gateway.yaml        check a config, list what it serves
      mcp-gateway render gateway.yaml TOOL     show the messages a call would send
      mcp-gateway serve gateway.yaml           serve it over stdio (for Claude Desktop, Cursor, ...)
      mcp-gateway call "mcp-gateway serve gateway.yaml" TOOL --arg text=hello

    Client commands (tools, call, prompts, prompt, resources, read) take a TARGET: a command line
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
              help="HTTP: most handshake-era sessions open at once; more get 503.")
@click.option("--max-sessions-per-caller", type=click.IntRange(min=1), default=100, show_default=True,
              help="HTTP with auth: most handshake-era sessions one key or token holds open at once.")
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
    from ..server import GatewayServer, HttpSettings

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
    gc.collect()
    gc.freeze()
    logging.getLogger("mcp_gateway").info(
        "loaded %d tools, %d prompts, %d resources from %s",
        len(gateway.catalog.tools), len(gateway.catalog.prompts.all()),
        len(gateway.catalog.resources.static()) + len(gateway.catalog.resources.templates()), config)
    if transport == "stdio":
        anyio.run(server.serve_stdio)
        return
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


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary (or the errors) as JSON.")
def validate(config: str, as_json: bool) -> None:
    """Check CONFIG and everything it includes; list what it serves.

    Every error of every file is reported at once, each as file:line:column, config path and
    message. Exits with status 2 when there is any error.
    """
    from .._gateway import load_gateway
    from ..routing import price_warnings

    try:
        gateway = load_gateway(config)
    except ConfigError as exc:
        if as_json:
            echo_json({"ok": False, "errors": [
                {"file": i.file, "line": i.line, "column": i.column, "path": i.path, "message": i.message}
                for i in exc.issues]})
        else:
            click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    catalog = gateway.catalog
    tools = catalog.tools.all()
    warnings = price_warnings(gateway.router, {t.config.model for t in catalog.tools.served()},
                              datetime.now(UTC).date())
    if as_json:
        echo_json({
            "ok": True,
            "warnings": warnings,
            "files": list(gateway.files),
            "tools": [{"name": t.name, "version": t.config.version, "status": t.config.status,
                       "model": t.config.model, "structured": t.config.output_schema is not None} for t in tools],
            "prompts": [p.name for p in catalog.prompts.all()],
            "resources": [r.uri for r in catalog.resources.static()]
                         + [r.config.uri_template for r in catalog.resources.templates()],
        })
        return
    for warning in warnings:  # not errors: the config serves, but its costs may be wrong
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{config}: OK ({len(gateway.files)} file{'s' if len(gateway.files) != 1 else ''})\n")
    click.echo(table(["TOOL", "VERSION", "STATUS", "MODEL", "OUTPUT", "DESCRIPTION"], [
        [t.name, t.config.version, t.config.status, t.config.model,
         "structured" if t.config.output_schema else "text", t.config.description] for t in tools]))
    click.echo()
    click.echo(table(["PROMPT", "ARGUMENTS", "DESCRIPTION"], [
        [p.name, ", ".join(a.name + ("" if a.required else "?") for a in p.arguments), p.description or ""]
        for p in catalog.prompts.all()]))
    click.echo()
    click.echo(table(["RESOURCE", "MIME TYPE", "DESCRIPTION"], [
        *([r.uri, r.config.mime_type, r.config.description or ""] for r in catalog.resources.static()),
        *([r.config.uri_template or "", r.config.mime_type, r.config.description or ""]
          for r in catalog.resources.templates()),
    ]))


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("tool")
@click.option("--arg", "-a", "pairs", multiple=True, metavar="KEY=VALUE",
              help="A tool argument; repeat for more. KEY:=JSON passes a JSON value.")
@click.option("--json", "json_args", metavar="OBJECT", help="All arguments as one JSON object.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def render(config: str, tool: str, pairs: Sequence[str], json_args: str | None, output: str) -> None:
    """Print the messages TOOL would send for the given arguments, without calling a model.

    Works for draft tools too, so a prompt can be tuned before it is published.
    """
    gateway = _load(config)
    registry = gateway.catalog.tools
    try:  # the version a call would reach (TOOL may pin one: NAME.v2, NAME.staging) ...
        found = registry.resolve(tool)
    except ToolNotFoundError:  # ... else a draft's newest version
        found = next(iter(registry.versions(tool)), None)
    if found is None:
        _fail(f"unknown tool '{tool}' in {config}")
    args = collect_arguments(pairs, json_args, found.config.input_schema)
    try:
        messages = found.render(found.validate(args))
    except (ArgumentError, RenderError) as exc:
        _fail(str(exc))
    if output == "json":
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


# -- client commands -------------------------------------------------------------------------------

_target_options = [
    click.option("--stdio", "stdio_command", metavar="COMMAND",
                 help="Server command line to run over stdio (instead of a TARGET argument)."),
    click.option("--legacy", is_flag=True, help="Force the initialize handshake (protocol 2025-11-25)."),
    click.option("--token", envvar="MCP_GATEWAY_TOKEN", metavar="TOKEN",
                 help="HTTP: an API key or JWT, sent as 'Authorization: Bearer TOKEN' (env MCP_GATEWAY_TOKEN)."),
    click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for each answer."),
    click.option("--json", "as_json", is_flag=True, help="Print the raw result as JSON."),
]


def _with_target_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_target_options):
        func = option(func)
    return func


def _split_target(stdio_command: str | None, positional: Sequence[str], names: Sequence[str]) -> list[str]:
    """Return [target, *rest] from either `--stdio CMD rest...` or `TARGET rest...`."""
    values = [stdio_command, *positional] if stdio_command else list(positional)
    if len(values) != len(names) + 1:
        expected = " ".join(n.upper() for n in names)
        _fail(f"expected TARGET {expected} (or --stdio COMMAND {expected})".rstrip(), 2)
    return values  # type: ignore[return-value]


def _run_client(target: str, legacy: bool, timeout: float, work: Callable[[Any], Awaitable[Any]],
                token: str | None = None) -> Any:
    """Run `work` against a connection. A stdio server's stderr is kept aside and shown only
    when something fails, so that its logs do not bury the answer."""
    from ..client import connect

    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as server_log:

        async def go() -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else None
            async with connect(target, mode="legacy" if legacy else "auto", timeout=timeout,
                               errlog=server_log, headers=headers) as client:
                return await work(client)

        try:
            return anyio.run(go)
        except ClientError as exc:
            server_log.seek(0)
            lines = server_log.read().splitlines()[-40:]
            if lines:
                click.echo("server stderr (last lines):\n" + "\n".join("  " + line for line in lines), err=True)
            _fail(str(exc))


@main.command()
@click.argument("target", nargs=-1)
@_with_target_options
def tools(target: Sequence[str], stdio_command: str | None, legacy: bool, token: str | None, timeout: float, as_json: bool) -> None:
    """List the tools of the MCP server at TARGET."""
    (where,) = _split_target(stdio_command, target, [])
    listed = _run_client(where, legacy, timeout, lambda c: c.list_tools(), token)
    if as_json:
        echo_json(listed)
        return
    click.echo(table(["TOOL", "ARGUMENTS", "DESCRIPTION"], [
        [t.name, ", ".join(_argument_names(t.input_schema)), t.description or ""] for t in listed]))


def _argument_names(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    return [n + ("" if n in required else "?") for n in schema.get("properties", {})]


@main.command()
@click.argument("target_and_tool", nargs=-1, metavar="TARGET TOOL")
@click.option("--arg", "-a", "pairs", multiple=True, metavar="KEY=VALUE",
              help="A tool argument; repeat for more. KEY:=JSON passes a JSON value.")
@click.option("--json-args", "--args", "json_args", metavar="OBJECT", help="All arguments as one JSON object.")
@click.option("--stream/--no-stream", default=None,
              help="Print text as the model generates it (default: on when stdout is a terminal).")
@_with_target_options
def call(target_and_tool: Sequence[str], pairs: Sequence[str], json_args: str | None, stream: bool | None,
         stdio_command: str | None, legacy: bool, token: str | None, timeout: float, as_json: bool) -> None:
    """Call TOOL on the MCP server at TARGET and print its answer.

    \b
    Examples:
      mcp-gateway call "mcp-gateway serve examples/gateway.yaml" summarize --arg text="..." --arg sentences=2
      mcp-gateway call --stdio "mcp-gateway serve examples/gateway.yaml" classify_ticket --args '{"ticket": "..."}'

    Exits with status 1 when the tool reports an error.
    """
    where, tool = _split_target(stdio_command, target_and_tool, ["tool"])
    streaming = not as_json and (sys.stdout.isatty() if stream is None else stream)
    streamed: list[str] = []

    async def show_progress(progress: float, total: float | None, message: str | None) -> None:
        if message:
            streamed.append(message)
            click.echo(message, nl=False)

    async def work(client: Any) -> Any:
        listed = {t.name: t for t in await client.list_tools()}
        tool_info = listed.get(tool)
        schema = tool_info.input_schema if tool_info else None
        # A structured answer is printed whole at the end; only text is worth streaming.
        live = streaming and tool_info is not None and not tool_info.output_schema
        return await client.call_tool(tool, collect_arguments(pairs, json_args, schema),
                                      progress_callback=show_progress if live else None)

    result = _run_client(where, legacy, timeout, work, token)
    if as_json:
        echo_json(result)
    elif streamed and not result.is_error:
        click.echo()  # the text is already on screen
    else:
        text = "\n".join(getattr(block, "text", f"[{block.type} content]") for block in result.content)
        if result.structured_content is not None and not result.is_error:
            text = json.dumps(result.structured_content, indent=2, ensure_ascii=False)
        click.echo(text, err=bool(result.is_error))
    if result.is_error:
        raise SystemExit(1)


@main.command()
@click.argument("target", nargs=-1)
@_with_target_options
def prompts(target: Sequence[str], stdio_command: str | None, legacy: bool, token: str | None, timeout: float, as_json: bool) -> None:
    """List the prompts of the MCP server at TARGET."""
    (where,) = _split_target(stdio_command, target, [])
    listed = _run_client(where, legacy, timeout, lambda c: c.list_prompts(), token)
    if as_json:
        echo_json(listed)
        return
    click.echo(table(["PROMPT", "ARGUMENTS", "DESCRIPTION"], [
        [p.name, ", ".join(a.name + ("" if a.required else "?") for a in p.arguments or []), p.description or ""]
        for p in listed]))


@main.command()
@click.argument("target_and_name", nargs=-1, metavar="TARGET NAME")
@click.option("--arg", "-a", "pairs", multiple=True, metavar="KEY=VALUE", help="A prompt argument (text).")
@_with_target_options
def prompt(target_and_name: Sequence[str], pairs: Sequence[str], stdio_command: str | None, legacy: bool, token: str | None,
           timeout: float, as_json: bool) -> None:
    """Get prompt NAME from the MCP server at TARGET and print its messages."""
    where, name = _split_target(stdio_command, target_and_name, ["name"])
    args = {k: str(v) for k, v in collect_arguments(pairs, None).items()}
    result = _run_client(where, legacy, timeout, lambda c: c.get_prompt(name, args), token)
    if as_json:
        echo_json(result)
        return
    for message in result.messages:
        click.echo(click.style(f"--- {message.role} ---", bold=True))
        click.echo(getattr(message.content, "text", f"[{message.content.type} content]"))


@main.command()
@click.argument("target", nargs=-1)
@_with_target_options
def resources(target: Sequence[str], stdio_command: str | None, legacy: bool, token: str | None, timeout: float, as_json: bool) -> None:
    """List the resources and resource templates of the MCP server at TARGET."""
    (where,) = _split_target(stdio_command, target, [])

    async def work(client: Any) -> Any:
        return await client.list_resources(), await client.list_resource_templates()

    fixed, templated = _run_client(where, legacy, timeout, work, token)
    if as_json:
        echo_json({"resources": to_jsonable(fixed), "resourceTemplates": to_jsonable(templated)})
        return
    click.echo(table(["URI", "NAME", "MIME TYPE", "DESCRIPTION"], [
        *([str(r.uri), r.name, r.mime_type or "", r.description or ""] for r in fixed),
        *([t.uri_template, t.name, t.mime_type or "", t.description or ""] for t in templated),
    ]))


@main.command()
@click.argument("target_and_uri", nargs=-1, metavar="TARGET URI")
@_with_target_options
def read(target_and_uri: Sequence[str], stdio_command: str | None, legacy: bool, token: str | None, timeout: float,
         as_json: bool) -> None:
    """Read resource URI from the MCP server at TARGET and print its text."""
    where, uri = _split_target(stdio_command, target_and_uri, ["uri"])
    result = _run_client(where, legacy, timeout, lambda c: c.read_resource(uri), token)
    if as_json:
        echo_json(result)
        return
    for content in result.contents:
        click.echo(getattr(content, "text", f"[binary {content.mime_type or 'content'}]"))
