"""`mcp-gateway chat`: talk with a session-aware tool on a terminal, one turn per line."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ._client import result_text, start_session
from ._target import Target, closest, fail, target_options

__all__ = ["chat"]

_HELP = "/state  /set KEY=VALUE  /history  /end  (Ctrl-D leaves, keeping the session)"


def _read_line(prompt: str) -> str | None:
    """One line from the user (with readline editing and history on a terminal); None at end of input."""
    try:
        return input(prompt)
    except EOFError:
        return None


def _message_field(schema: dict[str, Any]) -> str:
    """The argument a line of chat goes into: `message`, else the only required text property."""
    properties = schema.get("properties", {})
    if "message" in properties:
        return "message"
    texts = [n for n in schema.get("required", []) if properties.get(n, {}).get("type") == "string"]
    if len(texts) != 1:
        fail(
            f"cannot tell which argument a chat line goes into (give the tool a 'message' property); "
            f"properties: {', '.join(properties) or 'none'}",
            2,
        )
    return texts[0]


@click.command()
@click.argument("positional", nargs=-1, metavar="TARGET [TOOL]")
@click.option(
    "--session", "session", metavar="ID", help="Continue this session instead of starting a new one."
)
@target_options
def chat(target: Target, session: str | None, as_json: bool) -> None:
    """Chat with TOOL (default: `chat`) of the MCP server at TARGET, in one session.

    Each line you type is one call; the tool sees the earlier turns. Answers stream as they are
    generated. Commands: /state shows the session state, /set KEY=VALUE changes it, /history shows
    the turns so far, /end ends the session and leaves. Ctrl-D leaves and keeps the session (go on
    later with --session ID against a server whose store outlives it). Input may be piped too.

    \b
      mcp-gateway chat "mcp-gateway serve examples/gateway.yaml"
    """
    values = [target.stdio_command, *target.positional] if target.stdio_command else list(target.positional)
    if len(values) not in (1, 2):
        fail("expected TARGET [TOOL] (or --stdio COMMAND [TOOL])", 2)
    where, wanted = values[0], (values[1] if len(values) == 2 else None)
    interactive = sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401  (line editing and history for input())

    async def work(client: Any) -> None:
        import anyio

        listed = {t.name: t for t in await client.list_tools()}
        name = wanted or "chat"
        if name not in listed:
            fail(
                closest(name, [n for n in listed if not n.startswith("session_")])
                if wanted
                else "no tool named 'chat'; name the tool: mcp-gateway chat TARGET TOOL"
            )
        field = _message_field(listed[name].input_schema)
        has_sessions = "session_start" in listed
        handle = session or (await start_session(client) if has_sessions else None)
        if interactive:
            click.echo(
                f"chatting with {name}" + (f" in session {handle}" if handle else "") + f"; {_HELP}", err=True
            )
        printed: list[str] = []

        async def stream(progress: float, total: float | None, message: str | None) -> None:
            if message:
                printed.append(message)
                click.echo(message, nl=False)

        while True:
            line = await anyio.to_thread.run_sync(_read_line, "you> " if interactive else "")
            if line is None:
                if handle and interactive:
                    click.echo(f"\nsession {handle} kept", err=True)
                return
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                if await _command(client, line, handle):
                    return
                continue
            printed.clear()
            result = await client.call_tool(
                name, {field: line}, session=handle, progress_callback=None if as_json else stream
            )
            if as_json:
                click.echo(json.dumps(result.model_dump(mode="json", by_alias=True, exclude_none=True)))
            elif printed and not result.is_error:
                click.echo()
            else:
                click.echo(result_text(result), err=bool(result.is_error))

    target.run(where, work)


async def _command(client: Any, line: str, handle: str | None) -> bool:
    """Run a /command; True when the chat is over."""
    word, _, rest = line.partition(" ")
    if word not in ("/state", "/set", "/history", "/end"):
        click.echo(f"unknown command {word}; {_HELP}", err=True)
        return False
    if handle is None:
        click.echo("this server has no session tools (session_start, session_state)", err=True)
        return word == "/end"
    if word == "/history":
        read = await client.read_resource(f"session://{handle}/history.md")
        click.echo("\n".join(getattr(c, "text", "") for c in read.contents).rstrip())
        return False
    if word == "/end":
        result = await client.call_tool("session_end", {"session_id": handle})
        click.echo(f"session {handle} ended" if not result.is_error else result_text(result), err=True)
        return True
    arguments: dict[str, Any] = {"session_id": handle}
    if word == "/set":
        key, sep, value = rest.partition("=")
        if not sep or not key.strip():
            click.echo("usage: /set KEY=VALUE (VALUE may be JSON)", err=True)
            return False
        try:
            parsed: Any = json.loads(value)
        except ValueError:
            parsed = value
        arguments["set"] = {key.strip(): parsed}
    result = await client.call_tool("session_state", arguments)
    answer = result.structured_content or {}
    if result.is_error:
        click.echo(result_text(result), err=True)
    elif word == "/set":  # the server answers a change with the keys, not the values
        click.echo(f"set {key.strip()} (state keys: {', '.join(answer.get('keys', []))})", err=True)
    else:
        click.echo(json.dumps(answer.get("state", {}), indent=2, ensure_ascii=False))
    return False
