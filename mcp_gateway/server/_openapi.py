"""The REST API as an OpenAPI 3.1 document, generated from the catalog per caller.

One operation per served tool (`POST /v1/tools/{name}`) with the tool's own input schema as the
request body and its output schema inside the response, every error status the boundary table can
answer with (RFC 9457 problem details), the bearer scheme, and the tool's version and deprecation.
OpenAPI 3.1 schemas are JSON Schema 2020-12, so tool schemas are embedded as written; their local
`$defs` move to `components/schemas` (a `$ref` in the document resolves against the document).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._gateway import Gateway
from .._protocol import SESSION_ARGUMENT
from ..catalog import PromptTool
from ._boundary import problem_types
from ._protections import Protections

__all__ = ["openapi_document", "tool_summary"]

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# What a tool call can answer besides 200 (401 only with authentication on).
_TOOL_ERRORS = (400, 402, 403, 404, 410, 413, 415, 429, 502, 503, 504)
_SESSION_ERRORS = (404, 413, 503)
# Before OpenAPI 3.2 (`itemSchema`), the schema of an event stream describes one event.
_SSE_EVENT = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"type": "string", "enum": ["delta", "result", "error"],
              "description": "delta: {text}; result: the JSON of a 200 answer; error: a problem"},
    "data": {"type": "string", "contentMediaType": "application/json"}}}


def tool_summary(gateway: Gateway, tool: PromptTool, base_url: str, *, listed_name: str | None = None) -> dict[str, Any]:
    """A tool as `GET /v1/tools` lists it (`listed_name`: a pinned major line, e.g. summarize.v1)."""
    config = tool.config
    name = listed_name or config.name
    return {
        "name": name, "title": config.title, "description": tool.description, "version": config.version,
        "deprecated": config.status == "deprecated", "url": f"{base_url}/v1/tools/{name}",
        "input_schema": config.input_schema, "output_schema": gateway.output_schema_of(tool),
    }


def openapi_document(gateway: Gateway, guard: Protections, allows_tool: Callable[[str], bool]) -> dict[str, Any]:
    """The document for a caller who may see the tools `allows_tool` admits."""
    settings = gateway.settings
    components: dict[str, Any] = {"schemas": _base_schemas(), "securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "An API key (mgw_...) or a JWT, as configured under `auth:`."}}}
    auth = guard.verifier is not None
    paths: dict[str, Any] = {"/v1/tools": {"get": {
        "operationId": "list_tools", "summary": "List the tools this caller may call",
        "responses": {"200": {"description": "The tools", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ToolList"}}}}, **_errors((), auth)}}}}
    for listed_name, tool in gateway.catalog.tools.listed():  # the plain name, and each other served major
        if allows_tool(tool.name):
            paths[f"/v1/tools/{listed_name}"] = {"post": _tool_operation(
                tool, gateway.output_schema_of(tool), components, auth, sessions=gateway.sessions is not None,
                listed_name=listed_name)}
    if gateway.sessions is not None:
        paths["/v1/sessions"] = {"post": {
            "operationId": "start_session", "summary": "Start a session",
            "description": f"Pass the returned id as the `X-Session-Id` header (or a `{SESSION_ARGUMENT}` "
                           "argument) of later calls so that tools with context see earlier turns.",
            "responses": {"201": {"description": "The new session", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Session"}}}}, **_errors(_SESSION_ERRORS, auth)}}}
        paths["/v1/sessions/{session_id}"] = {"delete": {
            "operationId": "end_session", "summary": "End a session",
            "parameters": [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The ended session", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/EndedSession"}}}}, **_errors((404, 503), auth)}}}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": settings.title or settings.name, "version": settings.version,
                 "description": settings.instructions or f"The prompt tools of {settings.name} as HTTP APIs."},
        "paths": paths,
        "components": components,
    }
    if auth:
        document["security"] = [{"bearer": []}]
    return document


def _errors(statuses: tuple[int, ...], auth: bool) -> dict[str, Any]:
    titles = {status: ", ".join(m.title for m in mappings) for status, mappings in problem_types().items()}
    titles[401] = "Missing or invalid credentials"
    titles[403] = "Origin not allowed (DNS-rebinding protection)"
    titles[415] = "The body is not JSON (Content-Type: application/json)"
    wanted = sorted({*statuses, *((401,) if auth else ())})
    responses: dict[str, Any] = {}
    for status in wanted:
        response: dict[str, Any] = {"description": titles.get(status, "Error"),
                                    "content": {"application/problem+json": {"schema": _PROBLEM_REF}}}
        if status == 401:
            response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}}
        if status == 429:
            response["headers"] = {"Retry-After": {"schema": {"type": "string"}, "required": True}}
        responses[str(status)] = response
    return responses


def _tool_operation(tool: PromptTool, output_schema: Any, components: dict[str, Any], auth: bool, *,
                    sessions: bool, listed_name: str | None = None) -> dict[str, Any]:
    config = tool.config
    prefix = _component_name(listed_name or config.name)
    request_schema = _hoist(dict(config.input_schema), prefix, components)
    if sessions and config.context is not None:
        request_schema.setdefault("properties", {})
        request_schema["properties"] = {**request_schema["properties"], SESSION_ARGUMENT: {
            "type": "string", "description": "Session id (or send the X-Session-Id header)."}}
    result: dict[str, Any] = {"allOf": [{"$ref": "#/components/schemas/ToolResult"}]}
    if output_schema is not None:
        output = _hoist(dict(output_schema), prefix, components)
        result["allOf"].append({"type": "object", "required": ["structured"], "properties": {"structured": output}})
    components["schemas"][f"{prefix}_result"] = result
    parameters: list[dict[str, Any]] = [
        {"name": "stream", "in": "query", "required": False, "schema": {"type": "boolean"},
         "description": "Answer as server-sent events (same as `Accept: text/event-stream`)."}]
    if sessions:
        parameters.append({"name": "X-Session-Id", "in": "header", "required": False, "schema": {"type": "string"},
                           "description": "Continue this session (from POST /v1/sessions)."})
    description = tool.description
    description += (f"\n\nVersion {config.version}. Pin it with `POST /v1/tools/{config.name}@{config.version}`; "
                    "streamed answers are `delta` events and one final `result` (or `error`) event.")
    operation: dict[str, Any] = {
        "operationId": f"call_{prefix}",
        "summary": config.title or config.name,
        "description": description,
        "tags": ["tools"],
        "parameters": parameters,
        "requestBody": {"required": True, "content": {"application/json": {"schema": request_schema}}},
        "responses": {
            "200": {"description": "The tool's answer, with usage, cost and routing", "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{prefix}_result"}},
                "text/event-stream": {"schema": _SSE_EVENT}}},
            **_errors(_TOOL_ERRORS, auth)},
        "x-tool-version": config.version,
    }
    if config.status == "deprecated":
        operation["deprecated"] = True
    return operation


def _component_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name)


def _hoist(schema: dict[str, Any], prefix: str, components: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its `$defs` moved to components (refs rewritten) and `$schema`/`$id` dropped."""
    defs = schema.pop("$defs", None) or schema.pop("definitions", None) or {}
    schema.pop("$schema", None)
    schema.pop("$id", None)
    names = {key: f"{prefix}__{_component_name(key)}" for key in defs}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    for old in ("#/$defs/", "#/definitions/"):
                        if value.startswith(old) and value[len(old):] in names:
                            value = "#/components/schemas/" + names[value[len(old):]]
                out[key] = rewrite(value)
            return out
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        return node

    for key, definition in defs.items():
        components["schemas"][names[key]] = rewrite(definition)
    return rewrite(schema)


def _base_schemas() -> dict[str, Any]:
    usage = {"type": "object", "properties": {
        name: {"type": "integer", "minimum": 0}
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")},
        "required": ["input_tokens", "output_tokens"]}
    return {
        "Usage": usage,
        "ToolResult": {"type": "object", "required": ["text", "route", "target", "attempts", "usage", "cost_usd",
                                                      "duration_ms"], "properties": {
            "text": {"type": "string", "description": "The answer (JSON text when the tool has an output schema)."},
            "route": {"type": "string"}, "target": {"type": "string"}, "provider": {"type": "string"},
            "model": {"type": "string"}, "finish_reason": {"type": "string"},
            "attempts": {"type": "integer", "minimum": 0, "description": "Provider calls made (retries, fallback)."},
            "usage": {"$ref": "#/components/schemas/Usage"},
            "cost_usd": {"type": ["number", "null"], "description": "What the call cost; null when unknown."},
            "duration_ms": {"type": "number"},
            "session_id": {"type": "string"},
            "cache": {"type": "string", "enum": ["hit", "miss"]},
        }},
        "ToolList": {"type": "object", "required": ["tools"], "properties": {"tools": {"type": "array", "items": {
            "type": "object", "required": ["name", "version", "url", "input_schema"], "properties": {
                "name": {"type": "string"}, "title": {"type": ["string", "null"]},
                "description": {"type": "string"}, "version": {"type": "string"},
                "deprecated": {"type": "boolean"}, "url": {"type": "string"},
                "input_schema": {"type": "object"}, "output_schema": {"type": ["object", "null"]}}}}}},
        "Session": {"type": "object", "required": ["session_id", "expires_at"], "properties": {
            "session_id": {"type": "string"}, "expires_at": {"type": "number"}}},
        "EndedSession": {"type": "object", "required": ["session_id", "ended", "turns"], "properties": {
            "session_id": {"type": "string"}, "ended": {"const": True}, "turns": {"type": "integer"}}},
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": {"type": "string", "format": "uri"}, "title": {"type": "string"},
            "status": {"type": "integer"}, "detail": {"type": "string"},
            "errors": {"type": "array", "description": "Every violation of an argument error, by JSON path.",
                       "items": {"type": "object", "required": ["path", "message"], "properties": {
                           "path": {"type": "string"}, "message": {"type": "string"}}}},
            "retry_after_s": {"type": "number"}, "provider": {"type": "string"}, "kind": {"type": "string"},
            "limit": {"type": "string"}, "budget": {"type": "string"},
            "call": {"type": "object", "description": "Route, attempts and causes of a failed call, when known."},
        }},
    }
