"""A gateway's catalog as MCP protocol objects, converted once per loaded config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from mcp.shared.inbound import X_MCP_HEADER_KEY

from .._gateway import Gateway
from .._protocol import META_PREFIX, SESSION_ARGUMENT
from ..catalog import PromptEntry, PromptTool
from ._sessions import BUILTIN_TOOLS, SESSION_TEMPLATES

__all__ = ["USAGE_URI", "McpViews", "usage_for", "version_meta"]


def version_meta(tool: PromptTool, successor: str | None) -> dict[str, Any]:
    """What `_meta` says of a tool version, in tools/list and in every result it produces."""
    config = tool.config
    meta: dict[str, Any] = {"name": tool.name, "version": config.version, "status": config.status}
    if config.status in ("deprecated", "retired"):
        meta["deprecation"] = {
            "replacement": successor,
            "sunset": config.sunset.isoformat() if config.sunset else None,
            "note": config.deprecation_note,
        }
    return meta


def _tool(listed_name: str, tool: PromptTool, output_schema: Any, successor: str | None,
          versions: list[str]) -> types.Tool:
    config = tool.config
    schema = config.input_schema
    if config.context is not None:
        # Clients that cannot set _meta name their session with an argument instead.
        properties = {**schema.get("properties", {}), SESSION_ARGUMENT: {
            "type": "string", "description": "Session handle from session_start (optional)."}}
        schema = {**schema, "properties": properties}
    annotations = None
    if config.annotations is not None or config.title:
        hints = config.annotations.model_dump(exclude_none=True) if config.annotations else {}
        annotations = types.ToolAnnotations(title=config.title, **hints)
    title = config.title
    if listed_name != tool.name:  # a pinned major line beside the plain name: say which version it is
        title = f"{config.title or tool.name} (v{config.version})"
    return types.Tool(
        name=listed_name,
        title=title,
        description=tool.description,
        input_schema=schema,
        output_schema=output_schema,
        annotations=annotations,
        meta={f"{META_PREFIX}version": config.version, f"{META_PREFIX}status": config.status,
              f"{META_PREFIX}tool": {**version_meta(tool, successor), "versions": versions}},
    )


def _prompt(entry: PromptEntry) -> types.Prompt:
    return types.Prompt(
        name=entry.name,
        title=entry.title,
        description=entry.description,
        arguments=[types.PromptArgument(name=a.name, description=a.description, required=a.required)
                   for a in entry.arguments],
    )


USAGE_URI = "gateway://usage"
USAGE_RESOURCE = types.Resource(
    uri=USAGE_URI, name="gateway-usage", title="Usage and cost", mime_type="application/json",
    description="Calls, tokens and cost (USD) since this gateway started: in total, per tool, per route "
                "and per target.")


@dataclass(frozen=True, slots=True)
class McpViews:
    """List results are immutable per config, so they are built once, not per request."""

    tools: types.ListToolsResult
    prompts: types.ListPromptsResult
    resources: types.ListResourcesResult
    templates: types.ListResourceTemplatesResult
    # Only the tools whose input schema annotates a property with `x-mcp-header`: the SDK checks a
    # 2026-07-28 call's `Mcp-Param-*` headers against those annotations, and walks the schema on
    # every call to find them; a schema without any can reject nothing, so it is not handed over.
    input_schemas: Mapping[str, Mapping[str, Any]]
    session_tools: bool = False
    bases: Mapping[str, str] = field(default_factory=dict)  # listed name -> tool name (scopes name tools)

    @classmethod
    def from_gateway(cls, gateway: Gateway) -> McpViews:
        catalog = gateway.catalog
        registry = catalog.tools
        listed = registry.listed()
        sessions = gateway.sessions
        session_tools = sessions is not None and sessions.settings.builtin_tools
        tools = [_tool(name, t, gateway.output_schema_of(t), registry.successor(t),
                       [v.config.version for v in registry.versions(t.name) if v.config.status in ("published", "deprecated")])
                 for name, t in listed] + (list(BUILTIN_TOOLS) if session_tools else [])
        return cls(
            tools=types.ListToolsResult(tools=tools),
            prompts=types.ListPromptsResult(prompts=[_prompt(p) for p in catalog.prompts.all()]),
            resources=types.ListResourcesResult(resources=[
                types.Resource(uri=r.uri, name=r.config.name, title=r.config.title,
                               description=r.config.description, mime_type=r.config.mime_type,
                               size=len(r.text.encode()))
                for r in catalog.resources.static()
            ] + [USAGE_RESOURCE]),
            templates=types.ListResourceTemplatesResult(resource_templates=[
                types.ResourceTemplate(uri_template=r.config.uri_template or "", name=r.config.name,
                                       title=r.config.title, description=r.config.description,
                                       mime_type=r.config.mime_type)
                for r in catalog.resources.templates()
            ] + (list(SESSION_TEMPLATES) if sessions is not None else [])),
            input_schemas={t.name: t.input_schema for t in tools
                           if _mentions_key(t.input_schema, X_MCP_HEADER_KEY)},
            session_tools=session_tools,
            bases={name: t.name for name, t in listed},
        )


def _mentions_key(value: Any, key: str) -> bool:
    """Whether `key` is a key of any object nested in `value` (a JSON document)."""
    if isinstance(value, Mapping):
        return key in value or any(_mentions_key(v, key) for v in value.values())
    if isinstance(value, list):
        return any(_mentions_key(v, key) for v in value)
    return False


def usage_for(snapshot: Mapping[str, Any], allows_tool: Callable[[str], bool]) -> dict[str, Any]:
    """The usage resource as one caller may see it: only tools within its scopes. Totals per
    process, route and target mix every tool's calls, so a caller limited to some tools gets
    its tools' figures only."""
    tools = snapshot.get("tools", {})
    if allows_tool("*") and all(allows_tool(name) for name in tools):
        return dict(snapshot)
    return {"tools": {name: value for name, value in tools.items() if allows_tool(name)}}
