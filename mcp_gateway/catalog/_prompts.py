"""MCP prompts: plain prompts from the config, and each prompt tool offered as a prompt too.

MCP prompt arguments are strings and prompt messages have no system role, so tool prompts parse
their arguments by the tool's schema and deliver system text as the first user message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._errors import ArgumentError, GatewayError, RenderError, ToolNotFoundError, Violation
from ..config import PromptConfig
from ..providers import Message
from ..templates import CompiledTemplate
from ._tools import PromptTool, ToolRegistry

__all__ = ["PromptArgumentSpec", "PromptEntry", "PromptNotFoundError", "PromptRegistry"]


class PromptNotFoundError(GatewayError):
    pass


@dataclass(frozen=True, slots=True)
class PromptArgumentSpec:
    name: str
    description: str | None
    required: bool
    choices: tuple[str, ...] = ()


class PromptEntry:
    """A prompt as listed and rendered; built from a PromptConfig or from a PromptTool."""

    def __init__(
        self,
        *,
        name: str,
        title: str | None,
        description: str | None,
        arguments: tuple[PromptArgumentSpec, ...],
        tool: PromptTool | None = None,
        messages: tuple[tuple[str, CompiledTemplate], ...] = (),
        max_rendered_chars: int = 200_000,
    ) -> None:
        self.name = name
        self.title = title
        self.description = description
        self.arguments = arguments
        self._tool = tool
        self._messages = messages
        self._max_chars = max_rendered_chars

    @classmethod
    def from_tool(cls, tool: PromptTool) -> PromptEntry:
        schema = tool.config.input_schema
        required = set(schema.get("required", []))
        specs = tuple(
            PromptArgumentSpec(
                name=name,
                description=spec.get("description") if isinstance(spec, Mapping) else None,
                required=name in required,
                choices=tuple(str(c) for c in spec.get("enum", ())) if isinstance(spec, Mapping) else (),
            )
            for name, spec in schema.get("properties", {}).items()
        )
        return cls(name=tool.name, title=tool.config.title, description=tool.description, arguments=specs, tool=tool)

    @classmethod
    def from_config(
        cls, config: PromptConfig, messages: tuple[tuple[str, CompiledTemplate], ...], max_rendered_chars: int
    ) -> PromptEntry:
        specs = tuple(PromptArgumentSpec(a.name, a.description, a.required) for a in config.arguments)
        return cls(name=config.name, title=config.title, description=config.description, arguments=specs,
                   messages=messages, max_rendered_chars=max_rendered_chars)

    def render(self, arguments: Mapping[str, str] | None) -> tuple[Message, ...]:
        """The prompt's messages; raises ArgumentError or RenderError."""
        args = dict(arguments or {})
        if self._tool is not None:
            rendered = self._tool.render(self._tool.validate(_parse_by_schema(args, self._tool.config.input_schema)))
            return tuple(Message("user", m.content) if m.role == "system" else m for m in rendered)
        missing = [Violation(f"$.{a.name}", "required argument is missing")
                   for a in self.arguments if a.required and a.name not in args]
        unknown = [Violation(f"$.{k}", "unknown argument") for k in args if k not in {a.name for a in self.arguments}]
        if missing or unknown:
            raise ArgumentError(self.name, missing + unknown)
        context: Mapping[str, Any] = {a.name: None for a in self.arguments} | args
        if self._messages:  # one context for every message, built once
            context = self._messages[0][1].context(context)
        out: list[Message] = []
        budget = self._max_chars
        for role, template in self._messages:
            try:
                text = template.render(context, budget=budget)
            except RenderError as exc:
                raise RenderError(f"prompt '{self.name}', {role} message: {exc}") from None
            budget -= len(text)
            out.append(Message("user" if role == "system" else role, text))  # type: ignore[arg-type]
        return tuple(out)


def _parse_by_schema(args: Mapping[str, str], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Turn string prompt arguments into the types the tool's schema declares, where they parse."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    parsed: dict[str, Any] = {}
    for name, raw in args.items():
        kind = properties.get(name, {}).get("type") if isinstance(properties.get(name), Mapping) else None
        parsed[name] = _parse_one(raw, kind) if isinstance(raw, str) else raw
    return parsed


def _parse_one(raw: str, kind: Any) -> Any:
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if "string" in kinds or kind is None:
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return raw  # left as text: schema validation then names the argument and the type it wants
    return value


class PromptRegistry:
    """Listed prompts by name; a pinned or labelled tool name (`summarize.v1`) resolves through
    the tool registry, so prompts/get reaches every version a tools/call can."""

    def __init__(self, prompts: Iterable[PromptEntry], tools: ToolRegistry | None = None) -> None:
        self._prompts = {p.name: p for p in prompts}
        self._tools = tools

    def all(self) -> list[PromptEntry]:
        return list(self._prompts.values())

    def get(self, name: str) -> PromptEntry:
        found = self._prompts.get(name)
        if found is not None:
            return found
        if self._tools is not None and name not in self._tools.names() and self._tools.base_name(name):
            try:
                tool = self._tools.resolve(name)
            except ToolNotFoundError as exc:
                raise PromptNotFoundError(str(exc)) from None
            if tool.config.prompt:
                return PromptEntry.from_tool(tool)
        raise PromptNotFoundError(f"Unknown prompt: '{name}'")
