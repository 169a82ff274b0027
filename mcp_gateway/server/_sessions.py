"""Sessions at the protocol edge: which session a call belongs to, the built-in session tools,
and the session:// resources.

A call names its session with `_meta["mcp-gateway/session"]` or a `session_id` argument (for
clients that cannot set `_meta`). In the handshake era a connection without a handle gets its own
session on first use, ended when the connection closes; the 2026-07-28 era has no connections, so
there the handle is the only way.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import mcp_types as types
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import ServerRequestContext
from mcp.shared.uri_template import UriTemplate
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .._protocol import SESSION_ARGUMENT, SESSION_META_KEY
from ..sessions import SessionError, SessionManager, SessionRecord, Turn
from ._connection import connection_of

OwnSession = Callable[[], Awaitable[SessionRecord | None]]

__all__ = [
    "BUILTIN_TOOLS",
    "SESSION_ARGUMENT",
    "SESSION_META_KEY",
    "SESSION_TEMPLATES",
    "builtin_tool_result",
    "principal",
    "read_session_resource",
    "connection_session",
    "session_handle",
    "split_session_argument",
]

_CONNECTION_KEY = "mcp-gateway/session"

_HANDLE = {"type": "string", "description": "Session handle (from session_start)."}

BUILTIN_TOOLS = [
    types.Tool(
        name="session_start",
        title="Start a session",
        description="Start a conversation session. Pass the returned handle to later calls (in _meta "
                    f"'{SESSION_META_KEY}' or as the '{SESSION_ARGUMENT}' argument) so they see earlier turns.",
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        output_schema={"type": "object", "properties": {"session_id": {"type": "string"},
                                                        "expires_at": {"type": "number"}},
                       "required": ["session_id", "expires_at"]},
    ),
    types.Tool(
        name="session_end",
        title="End a session",
        description="End a session; its handle stops working and its data is purged after the retention time.",
        input_schema={"type": "object", "properties": {SESSION_ARGUMENT: _HANDLE},
                      "required": [SESSION_ARGUMENT], "additionalProperties": False},
    ),
    types.Tool(
        name="session_state",
        title="Read or change session state",
        description="Read a session's key/value state; 'set' merges values in, 'remove' drops keys (then "
                    "the answer lists the keys and the state's size, not the values). Prompt templates of "
                    "tools with context see it as session.state.",
        input_schema={"type": "object", "properties": {
            SESSION_ARGUMENT: _HANDLE,
            "set": {"type": "object", "description": "Keys and JSON values to store."},
            "remove": {"type": "array", "items": {"type": "string"}, "description": "Keys to delete."},
        }, "required": [SESSION_ARGUMENT], "additionalProperties": False},
        output_schema={"type": "object", "properties": {
            "state": {"type": "object", "description": "The whole state (a read)."},
            "keys": {"type": "array", "items": {"type": "string"}, "description": "Every key after a change."},
            "state_chars": {"type": "integer", "description": "The state's size as JSON characters after a change."},
        }},
    ),
]
BUILTIN_NAMES = frozenset(t.name for t in BUILTIN_TOOLS)

SESSION_TEMPLATES = [
    types.ResourceTemplate(uri_template="session://{id}/history", name="session-history", mime_type="application/json",
                           description="A session's turns, oldest first (JSON)."),
    types.ResourceTemplate(uri_template="session://{id}/history.md", name="session-history-markdown",
                           mime_type="text/markdown", description="A session's turns as a readable transcript."),
    types.ResourceTemplate(uri_template="session://{id}/state", name="session-state", mime_type="application/json",
                           description="A session's key/value state (JSON)."),
]
_TEMPLATES = [(UriTemplate.parse(t.uri_template), t.uri_template.rsplit("/", 1)[1]) for t in SESSION_TEMPLATES]


def principal(ctx: ServerRequestContext[Any]) -> str:
    """Who is calling: the authenticated client, or 'anonymous' where no authentication runs (stdio)."""
    token = get_access_token()
    return token.client_id if token is not None else "anonymous"


def split_session_argument(arguments: Mapping[str, Any] | None) -> tuple[str | None, dict[str, Any]]:
    args = dict(arguments or {})
    handle = args.pop(SESSION_ARGUMENT, None)
    return (handle if isinstance(handle, str) else None), args


def session_handle(ctx: ServerRequestContext[Any], argument: str | None) -> str | None:
    """The session a call names: `_meta["mcp-gateway/session"]`, else the `session_id` argument."""
    meta_handle = ctx.meta.get(SESSION_META_KEY) if ctx.meta else None
    return meta_handle if isinstance(meta_handle, str) else argument


def connection_session(ctx: ServerRequestContext[Any], manager: SessionManager) -> OwnSession | None:
    """In the handshake era, the connection's own session (started on first use by a context tool,
    ended with the connection); the 2026-07-28 era has no connections, so None."""
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return None
    return lambda: _connection_session(ctx, manager)


async def _connection_session(ctx: ServerRequestContext[Any], manager: SessionManager) -> SessionRecord:
    owner = principal(ctx)
    connection = connection_of(ctx)
    existing = connection.state.get(_CONNECTION_KEY)
    if existing is not None:
        return await manager.resolve(existing, owner)
    record = await manager.start(owner)
    connection.state[_CONNECTION_KEY] = record.id

    async def end_with_connection() -> None:
        try:
            await manager.end(record.id, None, "disconnected")
        except Exception:  # the store may be down at teardown; expiry ends it later
            pass

    connection.exit_stack.push_async_callback(end_with_connection)
    return record


def _result(value: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=json.dumps(value))],
                                structured_content=value)


async def builtin_tool_result(
    ctx: ServerRequestContext[Any], manager: SessionManager, name: str, arguments: Mapping[str, Any]
) -> types.CallToolResult:
    """Run session_start / session_end / session_state. Raises SessionError for bad handles."""
    owner = principal(ctx)
    if name == "session_start":
        record = await manager.start(owner)
        return _result({"session_id": record.id, "expires_at": record.idle_expires_at})
    handle = arguments.get(SESSION_ARGUMENT)
    if not isinstance(handle, str):
        raise SessionError(f"'{SESSION_ARGUMENT}' is required")
    if name == "session_end":
        record = await manager.end(handle, owner)
        return _result({"session_id": record.id, "ended": True, "turns": record.turn_count})
    values = arguments.get("set") or {}
    remove = arguments.get("remove") or []
    if not isinstance(values, dict) or not isinstance(remove, list):
        raise SessionError("'set' must be an object and 'remove' a list of keys")
    if values or remove:
        record = await manager.set_state(handle, owner, values, [str(k) for k in remove])
        # Not the values: echoing a large state back would cost as much again on every change.
        return _result({"keys": sorted(record.state), "state_chars": len(json.dumps(record.state, ensure_ascii=False))})
    record = await manager.resolve(handle, owner)
    return _result({"state": record.state})


def _markdown(record: SessionRecord, turns: list[Turn]) -> str:
    lines = [f"# Session {record.id}", "", f"{record.turn_count} turns, "
             f"{record.input_tokens} input and {record.output_tokens} output tokens.", ""]
    for turn in turns:
        lines += [f"## {turn.seq}. {turn.tool} ({turn.model})", "", "**Input**", "", turn.input, "",
                  "**Answer**", "", turn.output, ""]
    return "\n".join(lines)


async def read_session_resource(
    ctx: ServerRequestContext[Any], manager: SessionManager, uri: str
) -> types.ReadResourceResult | None:
    """The session:// resource at `uri`, for its owner only; None if `uri` is not one."""
    for template, kind in _TEMPLATES:
        variables = template.match(uri)
        if variables is None:
            continue
        session_id = str(variables["id"])
        record = await manager.store.get(session_id)
        if record is None or record.owner != principal(ctx):
            raise SessionError(f"Unknown session: '{session_id}'")  # never confirm another client's id
        if kind == "state":
            text, mime = json.dumps(record.state, ensure_ascii=False, indent=2), "application/json"
        else:
            turns = await manager.store.history(session_id)
            if kind == "history":
                text = json.dumps([t.to_dict() for t in turns], ensure_ascii=False, indent=2)
                mime = "application/json"
            else:
                text, mime = _markdown(record, turns), "text/markdown"
        return types.ReadResourceResult(contents=[types.TextResourceContents(uri=uri, mime_type=mime, text=text)])
    return None
