"""The team catalog: `/catalog` lists what a caller may see, `/catalog/tools/{name}` explains one tool
(schemas, an example, snippets, a try-it form) and usage and cost; `/` redirects to it.

Server-rendered with Jinja2 (autoescape on), one small script and stylesheet served from here (no
CDN, no build step). Each page is a public shell plus an HTML fragment with the content: without
`auth` the shell carries the fragment, so the page reads with JavaScript off; with `auth` the shell
holds no content and the script fetches the fragment with the key the viewer typed (kept in
sessionStorage, sent as a bearer header: never in a URL, a cookie or a log), so nothing leaks
without a key and each key sees only what its scopes allow.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from .._errors import GatewayError
from ._catalog_data import (example_arguments, rendered_example, schema_rows, snippets, usage_tables,
                            usage_totals, visible)
from ._live import LiveGateway
from ._protections import Protections

__all__ = ["catalog_routes"]

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_STATIC = {"catalog.js": "text/javascript; charset=utf-8", "catalog.css": "text/css; charset=utf-8"}
_HEADERS = {
    # Only this origin's script and style; no inline script, no framing, no referrer leaks.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def _environment() -> Environment:
    return Environment(loader=PackageLoader("mcp_gateway.server", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       trim_blocks=True, lstrip_blocks=True)


def catalog_routes(live: LiveGateway, guard: Protections, *,
                   security: TransportSecuritySettings | None = None) -> list[BaseRoute]:
    """The catalog's routes, for the gateway's Starlette app. The app's authenticating middleware
    made the caller known; the fragment routes answer 401 themselves. `security` applies the
    Host/Origin checks."""
    env = _environment()
    checker = TransportSecurityMiddleware(security) if security is not None else None
    auth = guard.verifier is not None

    def html(body: str, status: int = 200) -> Response:
        return HTMLResponse(body, status_code=status, headers=_HEADERS)

    async def refused(request: Request) -> Response | None:
        if checker is not None and (rejected := await checker.validate_request(request)) is not None:
            return rejected
        if not auth and (request.client is None or request.client.host not in _LOOPBACK):
            # Nothing asks who is looking: only this machine may (configure `auth:` to share it).
            return Response("the catalog of a gateway without auth is served to this machine only\n",
                            status_code=403, media_type="text/plain")
        return None

    async def index_fragment(request: Request) -> str:
        gateway = live.gateway
        scopes = guard.caller().scopes
        query = request.query_params.get("q", "").strip()
        found = visible(gateway, scopes)
        return env.get_template("_index.html").render(
            found=found, query=query, usage=await usage_tables(gateway, scopes),
            server=gateway.settings, auth=auth)

    async def tool_fragment(request: Request) -> tuple[int, str]:
        gateway = live.gateway
        name = request.path_params["name"]
        scopes = guard.caller().scopes
        served = [t for t in gateway.catalog.tools.served() if t.name == name]
        if not served or not scopes.allows_tool(name):
            # Out of scope looks exactly like missing, as on every other surface.
            return 404, env.get_template("_missing.html").render(name=name)
        tool = gateway.catalog.tools.get(name)
        versions = [t.config for t in gateway.catalog.tools.all() if t.name == name]
        base = str(request.base_url).rstrip("/")
        try:
            example = example_arguments(tool)
        except Exception:  # a schema the generator cannot satisfy: show the page without an example
            example = {}
        openai_surface = any(getattr(r, "path", None) == "/v1/chat/completions" for r in request.app.routes)
        usage = await usage_tables(gateway, scopes, tool=name)
        return 200, env.get_template("_tool.html").render(
            tool=tool, config=tool.config, versions=versions, example=example,
            rendered=rendered_example(tool, example), input_rows=schema_rows(tool.config.input_schema),
            output_rows=schema_rows(tool.config.output_schema), usage=usage,
            snippets=snippets(gateway, tool, base, example, auth=auth, openai_surface=openai_surface),
            lifecycle=_lifecycle(tool.config), tests=list(getattr(tool.config, "tests", None) or ()),
            form_fields=_form_fields(tool.config.input_schema))

    def shell(request: Request, title: str, fragment_url: str, content: str | None, status: int = 200) -> Response:
        return html(env.get_template("page.html").render(
            title=title, server=live.gateway.settings, auth=auth, fragment_url=fragment_url,
            content=Markup(content) if content is not None else None), status)  # noqa: S704 (rendered above, escaped)

    async def index(request: Request) -> Response:
        if (rejected := await refused(request)) is not None:
            return rejected
        url = "/catalog/fragment" + (f"?{request.url.query}" if request.url.query else "")
        return shell(request, "Catalog", url, None if auth else await index_fragment(request))

    async def tool_page(request: Request) -> Response:
        if (rejected := await refused(request)) is not None:
            return rejected
        name = request.path_params["name"]
        url = f"/catalog/fragment/tools/{name}"
        if auth:
            return shell(request, name, url, None)
        status, content = await tool_fragment(request)
        return shell(request, name, url, content, status)

    def fragment(render: Callable[[Request], Any], with_status: bool) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            if (rejected := await refused(request)) is not None:
                return rejected
            if auth and not isinstance(request.user, AuthenticatedUser):
                given = "authorization" in request.headers
                return html(env.get_template("_login_needed.html").render(given=given), 401)
            try:
                result = await render(request)
            except GatewayError as exc:
                return html(env.get_template("_missing.html").render(name=str(exc)), 404)
            status, body = result if with_status else (200, result)
            return html(body, status)
        return endpoint

    async def usage_json(request: Request) -> Response:
        """Totals as JSON for `mcp-gateway usage --url` (a gateway whose ledger is in its memory)."""
        if (rejected := await refused(request)) is not None:
            return rejected
        if auth and not isinstance(request.user, AuthenticatedUser):
            return JSONResponse({"error": "this endpoint needs a bearer key or token"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="mcp-gateway"'})
        raw = request.query_params.get("since")
        try:
            since = float(raw) if raw else None
            if since is not None and not since > 0:
                raise ValueError("since must be a positive number of seconds")
            table = await usage_totals(live.gateway, guard.caller().scopes, request.query_params.get("by", "tool"),
                                       since)
        except PermissionError as exc:
            return JSONResponse({"error": str(exc)}, status_code=403)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(usage_document(table), headers={"Cache-Control": "no-store"})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        text = resources.files("mcp_gateway.server").joinpath("templates", name).read_text(encoding="utf-8")
        return Response(text, media_type=_STATIC[name], headers={"Cache-Control": "no-cache",
                                                                 "X-Content-Type-Options": "nosniff"})

    async def root(request: Request) -> Response:
        return RedirectResponse("/catalog", status_code=307)

    return [
        Route("/", endpoint=root, methods=["GET"]),
        Route("/catalog", endpoint=index, methods=["GET"]),
        Route("/catalog/tools/{name}", endpoint=tool_page, methods=["GET"]),
        Route("/catalog/fragment", endpoint=fragment(index_fragment, False), methods=["GET"]),
        Route("/catalog/fragment/tools/{name}", endpoint=fragment(tool_fragment, True),
              methods=["GET"]),
        Route("/catalog/static/{name}", endpoint=static, methods=["GET"]),
        Route("/catalog/usage.json", endpoint=usage_json, methods=["GET"]),
    ]


def usage_document(table: Any) -> dict[str, Any]:
    """A usage table as JSON: cost as a decimal string, unpriced calls counted apart."""
    return {"by": table.by, "window": table.window, "note": table.note or None, "rows": [
        {"name": r.name, "calls": r.calls, "failed": r.failed, "tokens": r.tokens, "cost_usd": str(r.cost_usd),
         "unpriced_calls": r.unknown_cost} for r in table.rows]}


def _lifecycle(config: Any) -> dict[str, Any]:
    """Deprecation details the config carries (sunset and replacement arrive with tool lifecycle)."""
    return {
        "deprecated": config.status == "deprecated",
        "note": getattr(config, "deprecation_note", None),
        "sunset": getattr(config, "sunset", None),
        "replacement": getattr(config, "replacement", None),
        "labels": list(getattr(config, "labels", None) or ()),
    }


def _form_fields(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """One form control per top-level property: text, number, checkbox, select, or JSON text."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    fields: list[dict[str, Any]] = []
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            continue
        kind = spec.get("type")
        if isinstance(spec.get("enum"), list) and all(isinstance(v, str) for v in spec["enum"]):
            control = "select"
        elif kind == "boolean":
            control = "checkbox"
        elif kind in ("integer", "number"):
            control = "number"
        elif kind == "string":
            control = "textarea" if spec.get("maxLength", 10_000) > 200 else "text"
        else:
            control = "json"
        fields.append({"name": name, "control": control, "kind": kind if isinstance(kind, str) else "json",
                       "required": name in required, "spec": spec,
                       "default": spec.get("default"), "description": spec.get("description") or ""})
    return fields
