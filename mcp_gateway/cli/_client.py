"""Client commands: talk to any MCP server (tools, call, prompts, prompt, resources, read)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from ._args import arguments_options, collect_arguments
from ._output import echo_json, table, to_jsonable
from ._target import Target, closest, fail, target_options

__all__ = ["CLIENT_COMMANDS", "result_text", "start_session"]


@click.command()
@click.argument("positional", nargs=-1, metavar="TARGET")
@target_options
def tools(target: Target, as_json: bool) -> None:
    """List the tools of the MCP server at TARGET."""
    (where,) = target.split([])
    listed = target.run(where, lambda c: c.list_tools())
    if as_json:
        echo_json(listed)
        return
    click.echo(
        table(
            ["TOOL", "ARGUMENTS", "DESCRIPTION"],
            [[t.name, ", ".join(_argument_names(t.input_schema)), t.description or ""] for t in listed],
        )
    )


def _argument_names(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    return [n + ("" if n in required else "?") for n in schema.get("properties", {})]


def result_text(result: Any) -> str:
    """A tool result as people read it: structured content as indented JSON, else its text."""
    if result.structured_content is not None and not result.is_error:
        return json.dumps(result.structured_content, indent=2, ensure_ascii=False)
    return "\n".join(getattr(block, "text", f"[{block.type} content]") for block in result.content)


async def start_session(client: Any) -> str:
    """Start a gateway session (the built-in `session_start` tool) and return its handle."""
    started = await client.call_tool("session_start", {})
    if started.is_error or not isinstance(started.structured_content, dict):
        raise click.ClickException(f"cannot start a session: {result_text(started)}")
    return str(started.structured_content["session_id"])


@click.command()
@click.argument("positional", nargs=-1, metavar="TARGET TOOL")
@arguments_options
@click.option(
    "--stream/--no-stream",
    default=None,
    help="Print text as the model generates it (default: on when stdout is a terminal).",
)
@click.option(
    "--session",
    "session",
    metavar="ID|new",
    help="Run the call in this gateway session (from session_start, or 'new' to start one; its "
    "handle is printed on stderr). Sessions outlive a stdio server only with a SQLite or "
    "Redis store; over HTTP any store works.",
)
@target_options
def call(
    target: Target,
    pairs: Sequence[str],
    json_args: str | None,
    stream: bool | None,
    session: str | None,
    as_json: bool,
) -> None:
    """Call TOOL on the MCP server at TARGET and print its answer.

    \b
    Examples:
      mcp-gateway call "mcp-gateway serve examples/gateway.yaml" summarize --arg text="..." --arg sentences=2
      mcp-gateway call --stdio "mcp-gateway serve examples/gateway.yaml" classify_ticket \\
        --args '{"ticket": "..."}'

    Exits with status 1 when the tool reports an error.
    """
    where, tool = target.split(["tool"])
    streaming = not as_json and (sys.stdout.isatty() if stream is None else stream)
    streamed: list[str] = []

    async def show_progress(progress: float, total: float | None, message: str | None) -> None:
        if message:
            streamed.append(message)
            click.echo(message, nl=False)

    async def work(client: Any) -> Any:
        listed = {t.name: t for t in await client.list_tools()}
        tool_info = listed.get(tool)
        if tool_info is None:
            fail(closest(tool, list(listed)))
        arguments = collect_arguments(pairs, json_args, tool_info.input_schema)
        handle = session
        if handle == "new":
            handle = await start_session(client)
            click.echo(f"session: {handle}", err=True)
        # A structured answer is printed whole at the end; only text is worth streaming.
        live = streaming and not tool_info.output_schema
        return await client.call_tool(
            tool, arguments, progress_callback=show_progress if live else None, session=handle
        )

    result = target.run(where, work)
    if as_json:
        echo_json(result)
    elif streamed and not result.is_error:
        click.echo()  # the text is already on screen
    else:
        click.echo(result_text(result), err=bool(result.is_error))
    if result.is_error:
        raise SystemExit(1)


@click.command()
@click.argument("positional", nargs=-1, metavar="TARGET")
@target_options
def prompts(target: Target, as_json: bool) -> None:
    """List the prompts of the MCP server at TARGET."""
    (where,) = target.split([])
    listed = target.run(where, lambda c: c.list_prompts())
    if as_json:
        echo_json(listed)
        return
    click.echo(
        table(
            ["PROMPT", "ARGUMENTS", "DESCRIPTION"],
            [
                [
                    p.name,
                    ", ".join(a.name + ("" if a.required else "?") for a in p.arguments or []),
                    p.description or "",
                ]
                for p in listed
            ],
        )
    )


@click.command()
@click.argument("positional", nargs=-1, metavar="TARGET NAME")
@arguments_options
@target_options
def prompt(target: Target, pairs: Sequence[str], json_args: str | None, as_json: bool) -> None:
    """Get prompt NAME from the MCP server at TARGET and print its messages (arguments are text)."""
    where, name = target.split(["name"])
    args = {
        k: v if isinstance(v, str) else json.dumps(v) for k, v in collect_arguments(pairs, json_args).items()
    }
    result = target.run(where, lambda c: c.get_prompt(name, args))
    if as_json:
        echo_json(result)
        return
    for message in result.messages:
        click.echo(click.style(f"--- {message.role} ---", bold=True))
        click.echo(getattr(message.content, "text", f"[{message.content.type} content]"))


@click.command()
@click.argument("positional", nargs=-1, metavar="TARGET")
@target_options
def resources(target: Target, as_json: bool) -> None:
    """List the resources and resource templates of the MCP server at TARGET."""
    (where,) = target.split([])

    async def work(client: Any) -> Any:
        return await client.list_resources(), await client.list_resource_templates()

    fixed, templated = target.run(where, work)
    if as_json:
        echo_json({"resources": to_jsonable(fixed), "resourceTemplates": to_jsonable(templated)})
        return
    click.echo(
        table(
            ["URI", "NAME", "MIME TYPE", "DESCRIPTION"],
            [
                *([str(r.uri), r.name, r.mime_type or "", r.description or ""] for r in fixed),
                *([t.uri_template, t.name, t.mime_type or "", t.description or ""] for t in templated),
            ],
        )
    )


@click.command()
@click.argument("positional", nargs=-1, metavar="TARGET URI")
@target_options
def read(target: Target, as_json: bool) -> None:
    """Read resource URI from the MCP server at TARGET and print its text."""
    where, uri = target.split(["uri"])
    result = target.run(where, lambda c: c.read_resource(uri))
    if as_json:
        echo_json(result)
        return
    for content in result.contents:
        click.echo(getattr(content, "text", f"[binary {content.mime_type or 'content'}]"))


CLIENT_COMMANDS = (tools, call, prompts, prompt, resources, read)
