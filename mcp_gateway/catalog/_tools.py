"""Prompt tools as the gateway serves them: validated arguments in, rendered messages out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

from .._errors import ArgumentError, OutputError, RenderError, ToolNotFoundError, ToolRetiredError
from ..config import ToolConfig
from ..providers import Message
from ..templates import CompiledTemplate
from ._schema import violations

__all__ = ["PromptTool", "ToolRegistry"]

SERVED_STATUSES = frozenset({"published", "deprecated"})


@dataclass(frozen=True, slots=True)
class PromptTool:
    """One tool, with its schemas and templates compiled at load time."""

    config: ToolConfig
    messages: tuple[tuple[str, CompiledTemplate], ...]
    input_validator: Draft202012Validator
    output_validator: Draft202012Validator | None
    max_rendered_chars: int

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def description(self) -> str:
        """The description clients see; a deprecated tool says so first."""
        config = self.config
        if config.status != "deprecated":
            return config.description
        note = f" {config.deprecation_note}" if config.deprecation_note else ""
        return f"[Deprecated]{note} {config.description}"

    def validate(self, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return the arguments, or raise ArgumentError listing every violation. (Their size is
        checked before, once for every surface, by the server's call pipeline.)"""
        args = dict(arguments or {})
        found = violations(self.input_validator, args)
        if found:
            raise ArgumentError(self.name, found)
        return args

    def render(self, arguments: Mapping[str, Any], *, extra: Mapping[str, Any] | None = None) -> tuple[Message, ...]:
        """Render each message on its own; arguments are data, never template source.

        `extra` adds gateway-provided variables (such as `session`) to the context."""
        context = self._context(arguments)
        if extra:
            context.update(extra)
        budget = self.max_rendered_chars
        rendered: list[Message] = []
        for role, template in self.messages:
            try:
                text = template.render(context, budget=budget)
            except RenderError as exc:
                raise RenderError(f"tool '{self.name}', {role} message: {exc}") from None
            budget -= len(text)
            rendered.append(Message(role, text))  # type: ignore[arg-type]
        return tuple(rendered)

    def _context(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Arguments plus, for each declared property not given, its default or None."""
        properties: Mapping[str, Any] = self.config.input_schema.get("properties", {})
        context = {name: spec.get("default") if isinstance(spec, Mapping) else None for name, spec in properties.items()}
        context.update(arguments)
        return context

    def check_output(self, value: Any) -> None:
        if self.output_validator is not None:
            found = violations(self.output_validator, value)
            if found:
                raise OutputError(self.name, found)


class ToolRegistry:
    """The tools of one config, by name; knows which are served, and why others are not."""

    def __init__(self, tools: Iterable[PromptTool]) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self._served = [tool for tool in self._tools.values() if tool.config.status in SERVED_STATUSES]

    def served(self) -> list[PromptTool]:
        """Published and deprecated tools, in config order."""
        return list(self._served)

    def all(self) -> list[PromptTool]:
        return list(self._tools.values())

    def get(self, name: str, *, version: str | None = None) -> PromptTool:
        """The served tool called `name` (at `version` when pinned): the one lookup every surface
        uses. ToolNotFoundError says why when there is none."""
        tool = self._tools.get(name)
        if tool is None:
            raise ToolNotFoundError(f"Unknown tool: '{name}'")
        if version is not None and version != tool.config.version:
            raise ToolNotFoundError(f"Tool '{name}' has no served version '{version}' (served: {tool.config.version})")
        if tool.config.status == "retired":
            raise ToolRetiredError(f"Tool '{name}' is retired (last version {tool.config.version})")
        if tool.config.status == "draft":
            raise ToolNotFoundError(f"Tool '{name}' is a draft and not served")
        return tool

    def __len__(self) -> int:
        return len(self._served)
