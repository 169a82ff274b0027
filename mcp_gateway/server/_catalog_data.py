"""What the catalog page shows, as plain data for its templates: the entries a caller may see,
schemas as table rows, an example call, snippets per surface, and usage from the ledger.

Features still on other branches (tool lifecycle, a time-bucketed ledger, model scopes) are read
through `getattr` adapters here, so the page shows them once they are merged and nothing before.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .._gateway import Gateway
from ..catalog import PromptTool
from ..providers._fake import instance_for_schema
from ..security.scopes import ScopeSet

__all__ = ["SchemaRow", "ToolCard", "Visible", "example_arguments", "rendered_example", "schema_rows",
           "snippets", "usage_tables", "usage_totals", "visible"]

UNGROUPED = "Unassigned"


@dataclass(frozen=True, slots=True)
class ToolCard:
    tool: PromptTool
    group: str  # team, else owner, else UNGROUPED

    @property
    def search_text(self) -> str:
        config = self.tool.config
        return " ".join([config.name, config.title or "", config.description, self.group, *config.tags]).lower()


@dataclass(slots=True)
class Visible:
    """The catalog entries one caller may see."""

    groups: dict[str, list[ToolCard]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    prompts: list[Any] = field(default_factory=list)
    resources: list[tuple[str, str, str]] = field(default_factory=list)  # (uri, name, description)
    models: list[tuple[str, list[str]]] = field(default_factory=list)  # (alias, provider/model targets)

    @property
    def tool_count(self) -> int:
        return sum(len(cards) for cards in self.groups.values())


def _group(tool: PromptTool) -> str:
    config = tool.config
    return config.team or config.owner or UNGROUPED


def allows_model(scopes: ScopeSet, alias: str, tool_aliases: set[str]) -> bool:
    """A `models:NAME` scope where the scope set knows models (the OpenAI surface adds it);
    until then an alias is visible when a tool the caller may see uses it."""
    check: Callable[[str], bool] | None = getattr(scopes, "allows_model", None)
    return alias in tool_aliases or (check is not None and check(alias))


def visible(gateway: Gateway, scopes: ScopeSet) -> Visible:
    catalog = gateway.catalog
    found = Visible()
    tags: set[str] = set()
    aliases: set[str] = set()
    for tool in sorted(catalog.tools.served(), key=lambda t: t.name):
        if scopes.allows_tool(tool.name):
            found.groups.setdefault(_group(tool), []).append(ToolCard(tool, _group(tool)))
            tags.update(tool.config.tags)
            aliases.add(tool.config.model)
    found.groups = dict(sorted(found.groups.items(), key=lambda kv: (kv[0] == UNGROUPED, kv[0].lower())))
    found.tags = sorted(tags)
    found.prompts = [p for p in catalog.prompts.all() if scopes.allows_prompt(p.name)]
    found.resources = [(r.uri, r.config.name, r.config.description or "") for r in catalog.resources.static()
                       if scopes.allows_resource(r.uri)]
    found.resources += [(r.config.uri_template or "", r.config.name, r.config.description or "")
                        for r in catalog.resources.templates() if scopes.allows_resource(r.config.uri_template or "")]
    models = gateway.loaded.models if gateway.loaded is not None else {}
    for alias, located in sorted(models.items()):
        if allows_model(scopes, alias, aliases):
            found.models.append((alias, [f"{t.provider}/{t.model}" for t in located.value.all_targets()]))
    return found


@dataclass(frozen=True, slots=True)
class SchemaRow:
    path: str
    type: str
    required: bool
    default: str
    enum: str
    description: str
    constraints: str
    depth: int


_CONSTRAINTS = ("minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                "minItems", "maxItems", "pattern", "format")


def _type_of(spec: Mapping[str, Any]) -> str:
    kind = spec.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array" and isinstance(spec.get("items"), Mapping):
        return f"array of {_type_of(spec['items'])}"
    if kind is None:
        for key in ("anyOf", "oneOf"):
            if isinstance(spec.get(key), list):
                return " | ".join(_type_of(s) for s in spec[key] if isinstance(s, Mapping))
        if "$ref" in spec:
            return str(spec["$ref"]).rsplit("/", 1)[-1]
        return "any"
    return str(kind)


def schema_rows(schema: Mapping[str, Any] | None, prefix: str = "", depth: int = 0) -> list[SchemaRow]:
    """One row per property, nested objects flattened with dotted paths (array items as `[]`)."""
    if not isinstance(schema, Mapping) or depth > 5:
        return []
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    required = set(schema.get("required") or ())
    rows: list[SchemaRow] = []
    for name, spec in properties.items():
        if not isinstance(spec, Mapping):
            continue
        path = f"{prefix}{name}"
        rows.append(SchemaRow(
            path=path, type=_type_of(spec), required=name in required,
            default=json.dumps(spec["default"]) if "default" in spec else "",
            enum=", ".join(json.dumps(v) for v in spec["enum"]) if isinstance(spec.get("enum"), list) else "",
            description=str(spec.get("description") or ""),
            constraints=", ".join(f"{k}: {spec[k]}" for k in _CONSTRAINTS if k in spec), depth=depth))
        rows += schema_rows(spec, f"{path}.", depth + 1)
        if isinstance(spec.get("items"), Mapping):
            rows += schema_rows(spec["items"], f"{path}[].", depth + 1)
    return rows


def example_arguments(tool: PromptTool) -> dict[str, Any]:
    """Arguments valid against the tool's input schema (the generator the mock LLM uses)."""
    words = tuple(w.strip(".,;:!?()") for w in tool.config.description.split() if len(w) > 2) or ("example",)
    value = instance_for_schema(tool.config.input_schema, 0, words=words)
    return value if isinstance(value, dict) else {}


def rendered_example(tool: PromptTool, arguments: Mapping[str, Any]) -> list[tuple[str, str]] | str:
    """The messages the tool sends for `arguments`, or why they could not be rendered."""
    try:
        extra = {"session": {"history": [], "turns": 0}} if tool.config.context is not None else None
        return [(m.role, m.content if isinstance(m.content, str) else str(m.content))
                for m in tool.render(tool.validate(arguments), extra=extra)]
    except Exception as exc:  # shown on the page: a catalog must render whatever the tool does
        return f"{type(exc).__name__}: {exc}"


def snippets(gateway: Gateway, tool: PromptTool, base_url: str, arguments: Mapping[str, Any], *,
             auth: bool, openai_surface: bool) -> list[tuple[str, str, str]]:
    """(id, title, text) of copy-paste snippets; the key is always a placeholder, never a real one."""
    name = tool.name
    server = gateway.settings.name
    args = json.dumps(arguments, ensure_ascii=False)
    header = {"Authorization": "Bearer ${MCP_GATEWAY_KEY}"} if auth else {}
    http_entry: dict[str, Any] = {"url": f"{base_url}/mcp"}
    if header:
        http_entry["headers"] = header
    cursor = json.dumps({"mcpServers": {server: http_entry}}, indent=2)
    desktop = json.dumps({"mcpServers": {server: {
        "command": "npx", "args": ["-y", "mcp-remote", f"{base_url}/mcp",
                                   *(["--header", "Authorization:Bearer ${MCP_GATEWAY_KEY}"] if auth else [])],
        **({"env": {"MCP_GATEWAY_KEY": "your key"}} if auth else {})}}}, indent=2)
    token = " --token \"$MCP_GATEWAY_KEY\"" if auth else ""
    cli = f"mcp-gateway call {base_url}/mcp {name} --args {shlex.quote(args)}{token}"
    curl_auth = ' \\\n  -H "Authorization: Bearer $MCP_GATEWAY_KEY"' if auth else ""
    curl = (f"curl -sS -X POST {base_url}/v1/tools/{name}{curl_auth} \\\n"
            f"  -H 'Content-Type: application/json' \\\n  -d {shlex.quote(args)}")
    out = [("cursor", "Cursor / MCP client (Streamable HTTP)", cursor),
           ("desktop", "Claude Desktop (claude_desktop_config.json)", desktop),
           ("cli", "mcp-gateway call", cli), ("curl", "curl (REST API)", curl)]
    if openai_surface:
        key = 'os.environ["MCP_GATEWAY_KEY"]' if auth else '"unused"'
        out.append(("openai", f"openai SDK (model alias {tool.config.model})", (
            "import os\nfrom openai import OpenAI\n\n"
            f"client = OpenAI(base_url=\"{base_url}/v1\", api_key={key})\n"
            f"reply = client.chat.completions.create(model=\"{tool.config.model}\",\n"
            "    messages=[{\"role\": \"user\", \"content\": \"Hello\"}])\nprint(reply.choices[0].message.content)")))
    return out


# -- usage ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class UsageRow:
    name: str
    calls: int
    failed: int
    tokens: int
    cost_usd: Decimal
    unknown_cost: int

    @property
    def cost_text(self) -> str:
        """Never "$0" for calls whose cost is unknown: they are counted apart."""
        known = f"${self.cost_usd:.6f}".rstrip("0").rstrip(".") if self.cost_usd else ""
        if self.unknown_cost:
            return f"{known} + {self.unknown_cost} unpriced" if known else f"unknown ({self.unknown_cost} unpriced)"
        return known or "$0"


@dataclass(frozen=True, slots=True)
class UsageTable:
    by: str  # tool, route, key
    title: str
    window: str  # "last hour", "last day", or "since start-up"
    rows: list[UsageRow]
    note: str = ""  # why there are no rows although there may have been calls


WINDOWS = (("last hour", 3600.0), ("last day", 86400.0))
_BY = (("tool", "tools", "Per tool"), ("route", "routes", "Per model alias"), ("key", "keys", "Per key"))


def _row(name: str, totals: Any) -> UsageRow:
    return UsageRow(name, totals.calls, totals.failed, totals.input_tokens + totals.output_tokens,
                    Decimal(totals.cost_usd), totals.unknown_cost)


async def usage_tables(gateway: Gateway, scopes: ScopeSet, *, tool: str | None = None) -> list[UsageTable]:
    """Per tool, per model alias and per key, for the last hour and day when the ledger keeps
    time buckets (`totals(by=, since=)`, shared through Redis in a cluster), else since start-up.
    A caller limited to some tools sees those tools only: alias and key totals mix everyone's calls.
    With `tool`, that tool's row only."""
    ledger = gateway.router.ledger
    everything = scopes.allows_tool("*") and tool is None
    if tool is not None:
        scopes = ScopeSet.of([f"tools:{tool}"]) if scopes.allows_tool(tool) else ScopeSet.of([])
    windowed = getattr(ledger, "totals", None)
    tables: list[UsageTable] = []
    for by, plural, title in _BY:
        if by != "tool" and not everything:
            continue
        if windowed is not None:
            for window, seconds in WINDOWS:
                found = await windowed(by=by, since=seconds)
                tables.append(UsageTable(by, title, window, _rows(found, by, scopes)))
        elif hasattr(ledger, plural):
            tables.append(UsageTable(by, title, "since start-up", _rows(getattr(ledger, plural), by, scopes)))
        else:
            tables.append(UsageTable(by, title, "since start-up", [],
                                     note=f"This gateway's ledger does not record totals {title.lower()}."))
    return tables


async def usage_totals(gateway: Gateway, scopes: ScopeSet, by: str, since: float | None) -> UsageTable:
    """One table for `mcp-gateway usage` (via `/catalog/usage.json`): totals by `by` over the last
    `since` seconds when the ledger keeps time buckets, else since start-up (the window says which).
    PermissionError when a caller limited to some tools asks for totals that mix everyone's calls."""
    plural, title = {by: (plural, title) for by, plural, title in _BY}.get(by, (None, ""))
    if plural is None:
        raise ValueError(f"unknown grouping '{by}' (one of: tool, route, key)")
    if by != "tool" and not scopes.allows_tool("*"):
        raise PermissionError(f"totals per {by} mix every caller's calls: they need the scope tools:*")
    ledger = gateway.router.ledger
    windowed = getattr(ledger, "totals", None)
    if windowed is not None:
        window = "since start-up" if since is None else f"last {_duration(since)}"
        return UsageTable(by, title, window, _rows(await windowed(by=by, since=since), by, scopes))
    if not hasattr(ledger, plural):
        return UsageTable(by, title, "since start-up", [],
                          note=f"This gateway's ledger does not record totals {title.lower()}.")
    return UsageTable(by, title, "since start-up", _rows(getattr(ledger, plural), by, scopes))


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _rows(found: Mapping[str, Any], by: str, scopes: ScopeSet) -> list[UsageRow]:
    rows = [_row(name, totals) for name, totals in found.items() if by != "tool" or scopes.allows_tool(name)]
    return sorted(rows, key=lambda r: (-r.cost_usd, -r.calls, r.name))
