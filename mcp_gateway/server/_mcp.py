"""The MCP face of a gateway: a low-level SDK `Server` whose handlers read the catalog.

Transport-independent: stdio and HTTP serve the same `Server`. Bad calls never escape as
crashes: argument, render, provider and output failures are tool results with `isError: true`;
an unknown tool, prompt or resource is the protocol's invalid-params error.
"""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any

import anyio
import mcp_types as types
from mcp.server.connection import allowed_log_levels
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .._errors import ClientInputRequired, GatewayError
from .._gateway import ToolAnswer
from .._protocol import SESSION_META_KEY
from ..catalog import PromptNotFoundError, ResourceNotFoundError
from ..providers.sampling import sampling_channel
from ..sessions import SessionStoreError
from ._boundary import CALL_META_KEY, TOOL_META_KEY, mcp_request_error, mcp_tool_error
from ._connection import connection_of
from ._live import LiveGateway
from ._pipeline import CallPipeline, ToolCall
from ._protections import Protections
from ._sampling import McpSamplingChannel
from ._sessions import (
    BUILTIN_NAMES,
    builtin_tool_result,
    connection_session,
    read_session_resource,
    session_handle,
    split_session_argument,
)
from ._views import USAGE_URI, usage_for, version_meta

__all__ = ["answer_result", "build_server", "initialization_options"]

log = logging.getLogger("mcp_gateway.server")

# The handshake era's logging and sampling calls are deprecated by 2026-07-28 but are how we serve
# clients of that era, on purpose: the SDK's warning about our own calls is noise on stderr.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning, module=r"mcp_gateway\.")

_LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
_LEVEL_KEY = "mcp-gateway/log_level"
_DEPRECATION_TOLD_KEY = "mcp-gateway/deprecations_told"


def _may_log_to_client(ctx: ServerRequestContext[Any], level: str, *, default_on: bool = False) -> bool:
    """False when a handshake-era client set no level (and the message is not `default_on`) or a
    higher one, and when a 2026-07-28 request did not opt in at `level` (asked here with the SDK's
    own rule, so that nothing is built, and no deprecation warning raised, for a message the SDK
    would drop: most requests carry no opt-in)."""
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return level in allowed_log_levels(ctx.protocol_version, ctx.meta)
    wanted = connection_of(ctx).state.get(_LEVEL_KEY)
    if wanted is None:
        return default_on
    return _LOG_LEVELS.index(level) >= _LOG_LEVELS.index(wanted)


async def _log_to_client(ctx: ServerRequestContext[Any], level: str, data: dict[str, Any], *,
                         default_on: bool = False) -> None:
    """Tell a client that asked for logs (logging/setLevel, or the 2026-07-28 per-request opt-in);
    `default_on` messages also reach a handshake-era client that set no level."""
    if not _may_log_to_client(ctx, level, default_on=default_on):
        return
    try:
        await ctx.session.send_log_message(level, data, logger="mcp-gateway", related_request_id=ctx.request_id)
    except Exception:  # a log line is never worth failing a call for
        log.debug("could not send a log message to the client", exc_info=True)


async def _warn_deprecated_once(ctx: ServerRequestContext[Any], registry: Any, tool: Any) -> None:
    """A deprecated version's callers hear of it once per connection, as a warning log notification
    (sent even to clients that set no log level: MCP lets a server choose what it sends then)."""
    told: set[str] = connection_of(ctx).state.setdefault(_DEPRECATION_TOLD_KEY, set())
    key = f"{tool.name}@{tool.config.version}"
    if key in told:
        return
    told.add(key)
    successor = registry.successor(tool)
    message = f"tool '{tool.name}' version {tool.config.version} is deprecated"
    if tool.config.sunset:
        message += f" and will be retired on {tool.config.sunset.isoformat()}"
    if successor:
        message += f"; use '{successor}' instead"
    await _log_to_client(ctx, "warning", {"message": message, **version_meta(tool, successor)}, default_on=True)


def answer_result(text: str, structured: Any, meta: dict[str, Any]) -> types.CallToolResult | dict[str, Any]:
    """A tool's answer as a tools/call result: what `CallToolResult(content=[TextContent(text)],
    structured_content=structured, meta=meta)` dumps to (`by_alias`, `exclude_none`), built as the
    dict it becomes. The SDK takes a handler's result as a dict too, and validates and shapes every
    tools/call result for the client's protocol version either way: building, validating and
    dumping the model first cost about 15 us a call, for the same bytes on the wire.

    Except for a float at the top (of the structured value, or in `_meta`): the model's dump turns
    a NaN or infinity there into null, which is then left out; the model does that."""
    if isinstance(structured, float) or any(isinstance(value, float) for value in meta.values()):
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    structured_content=structured, meta=meta)
    result: dict[str, Any] = {"_meta": meta, "content": [{"type": "text", "text": text}]}
    if structured is not None:
        result["structuredContent"] = structured
    result["isError"] = False
    result["resultType"] = "complete"
    return result


def build_server(live: LiveGateway, protections: Protections | None = None, *,
                 pipeline: CallPipeline | None = None) -> Server[Any]:
    """An SDK server serving whatever gateway `live` holds at the time of each request.

    `protections` (auth scopes, rate limits, deadlines, metrics, audit) default to none of them
    beyond metrics: the local-user case of stdio. Tool calls run through `pipeline`, the one
    shared with the other surfaces of the same process."""
    guard = protections or Protections()
    calls = pipeline or CallPipeline(live, guard)

    async def track_connections(ctx: ServerRequestContext[Any], call_next: Any) -> Any:
        if ctx.method == "initialize":
            # Tracked from the handshake on (not from `notifications/initialized`, which the client
            # sends without waiting): a reload right after connecting must still reach it.
            live.track(connection_of(ctx))
        return await call_next(ctx)

    async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
        scopes = guard.caller().scopes
        views = live.views
        listed = views.tools
        # A pinned entry (summarize.v1) is allowed when its tool is: scopes name tools, not versions.
        allowed = [t for t in listed.tools if scopes.allows_tool(views.bases.get(t.name, t.name))]
        return listed if len(allowed) == len(listed.tools) else types.ListToolsResult(tools=allowed)

    async def set_logging_level(ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams) -> types.EmptyResult:
        connection_of(ctx).state[_LEVEL_KEY] = params.level
        return types.EmptyResult()

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult | dict[str, Any]:
        on_text = None
        if ctx.meta and ctx.meta.get("progress_token") is not None:
            count = 0

            async def on_text(piece: str) -> None:
                nonlocal count
                count += 1
                await ctx.session.report_progress(count, None, piece)

        manager = live.gateway.sessions
        builtin = manager is not None and params.name in BUILTIN_NAMES and live.views.session_tools
        if builtin:
            call = ToolCall(params.name, dict(params.arguments or {}), guard.caller())
        else:
            handle, arguments = split_session_argument(params.arguments)
            call = ToolCall(params.name, arguments, guard.caller(), session_handle=session_handle(ctx, handle),
                            own_session=connection_session(ctx, manager) if manager is not None else None,
                            on_text=on_text)

        async def run_builtin(call: ToolCall) -> types.CallToolResult:
            assert manager is not None
            return await builtin_tool_result(ctx, manager, call.name, call.arguments)

        token = sampling_channel.set(McpSamplingChannel(ctx, params.input_responses))
        try:
            answer = await calls.run(call, run_builtin if builtin else None)
        except ClientInputRequired as needed:
            return types.InputRequiredResult(input_requests=needed.requests)  # type: ignore[arg-type]
        except anyio.get_cancelled_exc_class():
            log.info("tool=%s cancelled by the client", params.name)
            raise
        except Exception as exc:
            if isinstance(exc, SessionStoreError):
                log.warning("tool=%s failed: %s", params.name, exc)  # the store's address stays in our log
            elif isinstance(exc, GatewayError):
                log.info("tool=%s failed: %s", params.name, type(exc).__name__)
            else:
                log.error("tool=%s failed unexpectedly", params.name, exc_info=exc)
            result = mcp_tool_error(exc)  # raises MCPError for what the protocol calls a bad request
            if call.tool is not None:  # a failed answer names its version too
                registry = live.gateway.catalog.tools
                result.meta = {**(result.meta or {}),
                               TOOL_META_KEY: version_meta(call.tool, registry.successor(call.tool))}
            await _log_to_client(ctx, "warning", {"tool": params.name, "error": str(exc)})
            return result
        finally:
            sampling_channel.reset(token)
        if not isinstance(answer, ToolAnswer):
            return answer  # a built-in session tool's result
        call_meta = answer.describe()
        registry = live.gateway.catalog.tools
        meta = {CALL_META_KEY: call_meta, TOOL_META_KEY: version_meta(answer.tool, registry.successor(answer.tool))}
        if call.session is not None:
            meta[SESSION_META_KEY] = call.session.id
        if _may_log_to_client(ctx, "info"):  # most clients ask for no logs: build no message for them
            await _log_to_client(ctx, "info", {"tool": params.name, **call_meta})
        if answer.tool.config.status == "deprecated":
            await _warn_deprecated_once(ctx, registry, answer.tool)
        return answer_result(answer.text, answer.structured, meta)

    async def list_prompts(ctx: ServerRequestContext[Any], params: Any) -> types.ListPromptsResult:
        scopes = guard.caller().scopes
        return types.ListPromptsResult(prompts=[p for p in live.views.prompts.prompts if scopes.allows_prompt(p.name)])

    async def get_prompt(ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams) -> types.GetPromptResult:
        try:
            caller = guard.caller()
            if not caller.scopes.allows_prompt(params.name):
                guard.refused(caller, "prompts/get", params.name)
                raise PromptNotFoundError(f"Unknown prompt: '{params.name}'")
            entry = live.gateway.catalog.prompts.get(params.name)
            messages = entry.render(params.arguments)
        except GatewayError as exc:
            raise mcp_request_error(exc) from None
        return types.GetPromptResult(
            description=entry.description,
            messages=[types.PromptMessage(role=m.role, content=types.TextContent(type="text", text=m.content))
                      for m in messages],
        )

    async def list_resources(ctx: ServerRequestContext[Any], params: Any) -> types.ListResourcesResult:
        scopes = guard.caller().scopes
        return types.ListResourcesResult(
            resources=[r for r in live.views.resources.resources if scopes.allows_resource(str(r.uri))])

    async def list_resource_templates(ctx: ServerRequestContext[Any], params: Any) -> types.ListResourceTemplatesResult:
        scopes = guard.caller().scopes
        return types.ListResourceTemplatesResult(resource_templates=[
            t for t in live.views.templates.resource_templates
            if t.uri_template.startswith("session://") or scopes.allows_resource(t.uri_template)])

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        try:
            caller = guard.caller()
            if not uri.startswith("session://") and not caller.scopes.allows_resource(uri):
                guard.refused(caller, "resources/read", uri)
                raise ResourceNotFoundError(f"Unknown resource: '{uri}'")
            if uri == USAGE_URI:
                usage = json.dumps(usage_for(await live.gateway.router.ledger.report(), caller.scopes.allows_tool),
                                   indent=2)
                return types.ReadResourceResult(contents=[
                    types.TextResourceContents(uri=uri, mime_type="application/json", text=usage)])
            manager = live.gateway.sessions
            if manager is not None and uri.startswith("session://"):
                found = await read_session_resource(ctx, manager, uri)
                if found is not None:
                    return found
            content = live.gateway.catalog.resources.read(uri)
        except GatewayError as exc:
            if isinstance(exc, SessionStoreError):
                log.warning("resource %s failed: %s", uri, exc)
            raise mcp_request_error(exc) from None
        return types.ReadResourceResult(contents=[
            types.TextResourceContents(uri=content.uri, mime_type=content.mime_type, text=content.text)])

    async def complete(ctx: ServerRequestContext[Any], params: types.CompleteRequestParams) -> types.CompleteResult:
        values: list[str] = []
        ref = params.ref
        if getattr(ref, "type", None) == "ref/prompt" and guard.caller().scopes.allows_prompt(ref.name):
            # Out of scope: no values, as for a prompt that does not exist.
            try:
                entry = live.gateway.catalog.prompts.get(ref.name)
            except GatewayError:
                entry = None
            if entry is not None:
                arg = next((a for a in entry.arguments if a.name == params.argument.name), None)
                prefix = params.argument.value
                values = [c for c in (arg.choices if arg else ()) if c.startswith(prefix)]
        return types.CompleteResult(
            completion=types.Completion(values=values[:100], total=len(values), has_more=len(values) > 100))

    settings = live.gateway.settings
    with warnings.catch_warnings():
        # logging/setLevel is deprecated from 2026-07-28 (SEP-2577) but is part of 2025-11-25, which we serve.
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        server: Server[Any] = Server(
            settings.name,
            version=settings.version,
            title=settings.title,
            instructions=settings.instructions,
            get_tool_input_schema=lambda name: live.views.input_schemas.get(name),
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_list_prompts=list_prompts,
            on_get_prompt=get_prompt,
            on_list_resources=list_resources,
            on_list_resource_templates=list_resource_templates,
            on_read_resource=read_resource,
            on_completion=complete,
            on_subscriptions_listen=ListenHandler(live.bus),
            on_set_logging_level=set_logging_level,
        )
    server.middleware.append(track_connections)
    return server


def initialization_options(server: Server[Any]) -> InitializationOptions:
    """Handshake-era options; list_changed is advertised so reloads can notify clients."""
    return server.create_initialization_options(
        NotificationOptions(tools_changed=True, prompts_changed=True, resources_changed=True))
