"""A gateway: a loaded, compiled config with its router, ready to answer tool calls.

`load_gateway` runs every stage (load -> compile -> build providers) and raises one ConfigError
with all issues; `Gateway.call_tool` runs one call through validate -> render -> route -> result.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ConfigError, OutputError, Violation
from .catalog import Catalog, build_catalog
from .config import Limits, ServerSettings, load_config
from .providers import Completion, OnText
from .routing import Route, Router, build_router

__all__ = ["Gateway", "ToolAnswer", "load_gateway"]

log = logging.getLogger("mcp_gateway.calls")


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """The outcome of one successful tool call."""

    text: str
    structured: Any
    completion: Completion
    route: Route
    duration_ms: float


@dataclass(frozen=True, slots=True)
class Gateway:
    settings: ServerSettings
    limits: Limits
    catalog: Catalog
    router: Router
    files: tuple[str, ...] = field(default=())

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any] | None, *, on_text: OnText | None = None
    ) -> ToolAnswer:
        """Run one call. Raises ToolNotFoundError, ArgumentError, RenderError, ProviderError or OutputError."""
        started = time.perf_counter()
        tool = self.catalog.tools.get(name)
        args = tool.validate(arguments)
        messages = tool.render(args)
        config = tool.config
        route, completion = await self.router.complete(
            config.model, messages, params=config.params, output_schema=config.output_schema, on_text=on_text
        )
        structured = None
        if config.output_schema is not None:
            structured = completion.structured
            if structured is None:
                try:
                    structured = json.loads(completion.text)
                except ValueError:
                    raise OutputError(name, [Violation("$", "the model did not answer with JSON")]) from None
            tool.check_output(structured)
        text = json.dumps(structured, ensure_ascii=False) if structured is not None else completion.text
        elapsed = (time.perf_counter() - started) * 1000
        log.info(
            "tool=%s version=%s route=%s provider=%s model=%s input_tokens=%d output_tokens=%d ms=%.1f",
            name, config.version, route.name, route.provider.name, completion.model,
            completion.usage.input_tokens, completion.usage.output_tokens, elapsed,
        )
        return ToolAnswer(text, structured, completion, route, elapsed)

    async def aclose(self) -> None:
        await self.router.aclose()


def load_gateway(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Gateway:
    """Load and compile a config; raise ConfigError with every issue of every file."""
    loaded = load_config(path)
    catalog, issues = build_catalog(loaded)
    router, router_issues = build_router(loaded, os.environ if environ is None else environ)
    if issues or router_issues:
        raise ConfigError(issues + router_issues)
    return Gateway(loaded.server, loaded.limits, catalog, router, tuple(loaded.files))
