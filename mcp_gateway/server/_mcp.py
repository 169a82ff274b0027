"""The MCP face of a gateway: a low-level SDK `Server` whose handlers read the catalog.

Transport-independent: stdio and HTTP serve the same `Server`. Bad calls never escape as
crashes: argument, render, provider and output failures are tool results with `isError: true`;
an unknown tool, prompt or resource is the protocol's invalid-params error.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from typing import Any

import anyio
import mcp_types as types
from mcp import MCPError
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .._errors import (
    ArgumentError,
    ClientInputRequired,
    GatewayError,
    OutputError,
    ProviderError,
    RenderError,
    ToolNotFoundError,
)
from .._gateway import ToolAnswer
from .._protocol import META_PREFIX, SESSION_META_KEY
from .._tokens import estimate_tokens
from ..accounting import BudgetExceededError
from ..catalog import PromptNotFoundError, ResourceNotFoundError
from ..providers.sampling import sampling_channel
from ..security import RateLimitExceeded, RateLimitUnavailable, RequestLimitError
from ..sessions import SessionError, SessionStoreError
from ._live import LiveGateway
from ._protections import CallRecord, Protections
from ._views import USAGE_URI
from ._sampling import McpSamplingChannel
from ._sessions import (
    BUILTIN_NAMES,
    builtin_tool_result,
    read_session_resource,
    session_for_call,
    split_session_argument,
)

__all__ = ["build_server", "initialization_options"]

log = logging.getLogger("mcp_gateway.server")

_LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
_LEVEL_KEY = "mcp-gateway/log_level"


async def _log_to_client(ctx: ServerRequestContext[Any], level: str, data: dict[str, Any]) -> None:
    """Tell a client that asked for logs (logging/setLevel, or the 2026-07-28 per-request opt-in)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        wanted = ctx.session._connection.state.get(_LEVEL_KEY)
        if wanted is None or _LOG_LEVELS.index(level) < _LOG_LEVELS.index(wanted):
            return
    try:
        await ctx.session.send_log_message(level, data, logger="mcp-gateway", related_request_id=ctx.request_id)
    except Exception:  # a log line is never worth failing a call for
        log.debug("could not send a log message to the client", exc_info=True)


def _error_result(message: str, meta: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True, meta=meta)


def record_answer(guard: Protections, record: CallRecord, tool: str, answer: ToolAnswer) -> None:
    """Tokens and cost of a finished call, for rate-limit settlement, metrics and the audit log."""
    usage = answer.completion.usage
    record.input_tokens, record.output_tokens = usage.input_tokens, usage.output_tokens
    routed = answer.routed
    record.cost_usd = float(routed.cost_usd) if routed.cost_usd is not None else None
    if routed.cache == "hit":
        return  # no provider was called
    for attempt in routed.attempts:
        guard.metrics.provider_call(attempt.provider, attempt.model, attempt.duration_ms / 1000,
                                    error_type=None if attempt.outcome in ("ok", "lost") else attempt.outcome)
    guard.metrics.usage(tool=tool, route=answer.route.name, provider=routed.target.provider.name,
                        model=answer.completion.model, input_tokens=usage.input_tokens,
                        output_tokens=usage.output_tokens, cached_tokens=usage.cache_read_tokens,
                        cost_usd=record.cost_usd)


def build_server(live: LiveGateway, protections: Protections | None = None) -> Server[Any]:
    """An SDK server serving whatever gateway `live` holds at the time of each request.

    `protections` (auth scopes, rate limits, deadlines, metrics, audit) default to none of them
    beyond metrics: the local-user case of stdio."""
    guard = protections or Protections()

    async def track_connections(ctx: ServerRequestContext[Any], call_next: Any) -> Any:
        if ctx.method == "initialize":
            # Tracked from the handshake on (not from `notifications/initialized`, which the client
            # sends without waiting): a reload right after connecting must still reach it.
            # ctx.session is a per-request wrapper; the connection behind it lives as long as the
            # client is connected. The SDK has no public accessor for it yet (2.3).
            live.track(ctx.session._connection)
        return await call_next(ctx)

    async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
        scopes = guard.caller().scopes
        listed = live.views.tools
        if scopes.allows_tool("*") and all(scopes.allows_tool(t.name) for t in listed.tools):
            return listed
        return types.ListToolsResult(tools=[t for t in listed.tools if scopes.allows_tool(t.name)])

    async def set_logging_level(ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams) -> types.EmptyResult:
        ctx.session._connection.state[_LEVEL_KEY] = params.level
        return types.EmptyResult()

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        on_text = None
        first_piece_at: float | None = None
        if ctx.meta and ctx.meta.get("progress_token") is not None:
            count = 0

            async def on_text(piece: str) -> None:
                nonlocal count, first_piece_at
                if count == 0:
                    first_piece_at = time.perf_counter()
                count += 1
                await ctx.session.report_progress(count, None, piece)

        caller = guard.caller()
        if not caller.scopes.allows_tool(params.name):
            # Out-of-scope tools are absent from this caller's list; calling one is like calling
            # a tool that does not exist.
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: '{params.name}'")
        gateway = live.gateway
        manager = gateway.sessions
        handle, arguments = split_session_argument(params.arguments)
        session = None
        estimate = estimate_tokens(json.dumps(arguments, default=str)) if guard.limiter is not None else 0
        started = time.perf_counter()
        try:
            async with guard.tool_call(caller, params.name, estimated_tokens=estimate) as record:
                with live.call():
                    if manager is not None and params.name in BUILTIN_NAMES and live.views.session_tools:
                        return await builtin_tool_result(ctx, manager, params.name, params.arguments or {})
                    if manager is not None:
                        tool = gateway.catalog.tools.get(params.name)
                        session = await session_for_call(ctx, manager, handle, tool.config.context is not None)
                        record.session_id = session.id if session else None
                    token = sampling_channel.set(McpSamplingChannel(ctx, params.input_responses))
                    try:
                        answer = await gateway.call_tool(params.name, arguments, on_text=on_text, session=session,
                                                        caller=caller.principal)
                    finally:
                        sampling_channel.reset(token)
                record_answer(guard, record, params.name, answer)
                if first_piece_at is not None:
                    guard.metrics.first_chunk(answer.routed.target.provider.name, answer.completion.model,
                                              first_piece_at - started)
        except ClientInputRequired as needed:
            return types.InputRequiredResult(input_requests=needed.requests)  # type: ignore[arg-type]
        except anyio.get_cancelled_exc_class():
            log.info("tool=%s cancelled by the client", params.name)
            raise
        except ToolNotFoundError as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        except RateLimitExceeded as exc:
            return _error_result(f"Rate limit exceeded: {exc}; retry after {exc.retry_after:.1f} s",
                                 meta={f"{META_PREFIX}retry_after_s": round(exc.retry_after, 3)})
        except RateLimitUnavailable as exc:
            return _error_result(f"Rate limits cannot be checked right now: {exc}")
        except (ArgumentError, RenderError, ProviderError, BudgetExceededError, OutputError, SessionError,
                SessionStoreError, RequestLimitError) as exc:
            log.info("tool=%s failed: %s", params.name, type(exc).__name__)
            await _log_to_client(ctx, "warning", {"tool": params.name, "error": str(exc)})
            return _error_result(str(exc))
        # route, target, provider, model, finish reason, attempts, usage, cost_usd, cache, hedging
        call_meta: dict[str, Any] = answer.routed.describe()
        call_meta["duration_ms"] = round(answer.duration_ms, 3)
        meta = {f"{META_PREFIX}call": call_meta}
        if session is not None:
            meta[SESSION_META_KEY] = session.id
        await _log_to_client(ctx, "info", {"tool": params.name, **meta[f"{META_PREFIX}call"]})
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=answer.text)],
            structured_content=answer.structured,
            meta=meta,
        )

    async def list_prompts(ctx: ServerRequestContext[Any], params: Any) -> types.ListPromptsResult:
        scopes = guard.caller().scopes
        return types.ListPromptsResult(prompts=[p for p in live.views.prompts.prompts if scopes.allows_prompt(p.name)])

    async def get_prompt(ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams) -> types.GetPromptResult:
        try:
            if not guard.caller().scopes.allows_prompt(params.name):
                raise PromptNotFoundError(f"Unknown prompt: '{params.name}'")
            entry = live.gateway.catalog.prompts.get(params.name)
            messages = entry.render(params.arguments)
        except (PromptNotFoundError, ArgumentError, RenderError) as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
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
            if not uri.startswith("session://") and not guard.caller().scopes.allows_resource(uri):
                raise ResourceNotFoundError(f"Unknown resource: '{uri}'")
            if uri == USAGE_URI:
                usage = json.dumps(await live.gateway.router.ledger.report(), indent=2)
                return types.ReadResourceResult(contents=[
                    types.TextResourceContents(uri=uri, mime_type="application/json", text=usage)])
            manager = live.gateway.sessions
            if manager is not None and uri.startswith("session://"):
                found = await read_session_resource(ctx, manager, uri)
                if found is not None:
                    return found
            content = live.gateway.catalog.resources.read(uri)
        except (ResourceNotFoundError, RenderError, SessionError, SessionStoreError) as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        return types.ReadResourceResult(contents=[
            types.TextResourceContents(uri=content.uri, mime_type=content.mime_type, text=content.text)])

    async def complete(ctx: ServerRequestContext[Any], params: types.CompleteRequestParams) -> types.CompleteResult:
        values: list[str] = []
        ref = params.ref
        if getattr(ref, "type", None) == "ref/prompt":
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
