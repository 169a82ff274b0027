"""The MCP face of a gateway: a low-level SDK `Server` whose handlers read the catalog.

Transport-independent: stdio and HTTP serve the same `Server`. Bad calls never escape as
crashes: argument, render, provider and output failures are tool results with `isError: true`;
an unknown tool, prompt or resource is the protocol's invalid-params error.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import mcp_types as types
from mcp import MCPError
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler

from .._errors import ArgumentError, GatewayError, OutputError, ProviderError, RenderError, ToolNotFoundError
from ..catalog import PromptNotFoundError, ResourceNotFoundError
from ._live import LiveGateway
from ._views import META_PREFIX

__all__ = ["build_server", "initialization_options"]

log = logging.getLogger("mcp_gateway.server")

def _error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def build_server(live: LiveGateway) -> Server[Any]:
    """An SDK server serving whatever gateway `live` holds at the time of each request."""

    async def track_connections(ctx: ServerRequestContext[Any], call_next: Any) -> Any:
        if ctx.method == "notifications/initialized":
            # ctx.session is a per-request wrapper; the connection behind it lives as long as the
            # client is connected. The SDK has no public accessor for it yet (2.3).
            live.track(ctx.session._connection)
        return await call_next(ctx)

    async def list_tools(ctx: ServerRequestContext[Any], params: Any) -> types.ListToolsResult:
        return live.views.tools

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        on_text = None
        if ctx.meta and ctx.meta.get("progress_token") is not None:
            count = 0

            async def on_text(piece: str) -> None:
                nonlocal count
                count += 1
                await ctx.session.report_progress(count, None, piece)

        try:
            with live.call():
                answer = await live.gateway.call_tool(params.name, params.arguments, on_text=on_text)
        except anyio.get_cancelled_exc_class():
            log.info("tool=%s cancelled by the client", params.name)
            raise
        except ToolNotFoundError as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        except (ArgumentError, RenderError, ProviderError, OutputError) as exc:
            log.info("tool=%s failed: %s", params.name, type(exc).__name__)
            return _error_result(str(exc))
        usage = answer.completion.usage
        meta = {f"{META_PREFIX}call": {
            "route": answer.route.name,
            "provider": answer.route.provider.name,
            "model": answer.completion.model,
            "finish_reason": answer.completion.finish_reason,
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
            "duration_ms": round(answer.duration_ms, 3),
        }}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=answer.text)],
            structured_content=answer.structured,
            meta=meta,
        )

    async def list_prompts(ctx: ServerRequestContext[Any], params: Any) -> types.ListPromptsResult:
        return live.views.prompts

    async def get_prompt(ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams) -> types.GetPromptResult:
        try:
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
        return live.views.resources

    async def list_resource_templates(ctx: ServerRequestContext[Any], params: Any) -> types.ListResourceTemplatesResult:
        return live.views.templates

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        try:
            content = live.gateway.catalog.resources.read(str(params.uri))
        except (ResourceNotFoundError, RenderError) as exc:
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
    )
    server.middleware.append(track_connections)
    return server


def initialization_options(server: Server[Any]) -> InitializationOptions:
    """Handshake-era options; list_changed is advertised so reloads can notify clients."""
    return server.create_initialization_options(
        NotificationOptions(tools_changed=True, prompts_changed=True, resources_changed=True))
