"""Prompt tools as the gateway serves them: validated arguments in, rendered messages out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from .._errors import ArgumentError, OutputError, RenderError, ToolNotFoundError, ToolRetiredError
from ..config import ToolConfig
from ..providers import Message
from ..templates import CompiledTemplate
from ._schema import violations
from ._versions import major, matches_pin, version_key

__all__ = ["PromptTool", "ToolRegistry"]

SERVED_STATUSES = frozenset({"published", "deprecated"})
_MAX_REMEMBERED = 4096  # resolved pins kept; the registry never changes, so they never go stale


@dataclass(frozen=True, slots=True)
class PromptTool:
    """One tool, with its schemas and templates compiled at load time."""

    config: ToolConfig
    messages: tuple[tuple[str, CompiledTemplate], ...]
    input_validator: Draft202012Validator
    output_validator: Draft202012Validator | None
    max_rendered_chars: int
    # Each declared property's default (None when it has none): what a call that omits it renders with.
    defaults: Mapping[str, Any] = field(init=False, repr=False, compare=False)
    # Whether every message is a plain template, which reads names from any mapping: then a call's
    # context is a plain dict, not one laid over the template globals.
    _plain: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        properties: Mapping[str, Any] = self.config.input_schema.get("properties", {})
        defaults = {name: spec.get("default") if isinstance(spec, Mapping) else None
                    for name, spec in properties.items()}
        object.__setattr__(self, "defaults", defaults)
        object.__setattr__(self, "_plain", all(template.is_plain for _, template in self.messages))

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
        messages = self.messages
        if not messages:
            return ()
        # One context for every message (defaults, then arguments, then `extra`), built once.
        context: Mapping[str, Any]
        if self._plain:
            context = {**self.defaults, **arguments, **extra} if extra else {**self.defaults, **arguments}
        else:
            context = messages[0][1].context(self.defaults, arguments, extra or {})
        budget = self.max_rendered_chars
        rendered: list[Message] = []
        for role, template in messages:
            try:
                text = template.render(context, budget=budget)
            except RenderError as exc:
                raise RenderError(f"tool '{self.name}', {role} message: {exc}") from None
            budget -= len(text)
            rendered.append(Message(role, text))  # type: ignore[arg-type]
        return tuple(rendered)

    def check_output(self, value: Any) -> None:
        if self.output_validator is not None:
            found = violations(self.output_validator, value)
            if found:
                raise OutputError(self.name, found)


class ToolRegistry:
    """Every version of every tool, and the one lookup from a requested name to a tool version.

    A requested name is one of:

    - `summarize`: the newest served version (published before deprecated, then newest first);
    - `summarize.v1`, `summarize.v1.4`, `summarize.v1.4.0`: the newest served version the pin selects;
    - `summarize.staging`: the version carrying that label, whatever its status short of retired
      (labels let a team reach a draft without publishing it).

    Every surface (MCP tools/call and prompts/get, the test runner, REST) resolves through
    `resolve`, so they can never disagree about which version answers.
    """

    def __init__(self, tools: Iterable[PromptTool]) -> None:
        self._versions: dict[str, list[PromptTool]] = {}
        for tool in tools:
            self._versions.setdefault(tool.name, []).append(tool)
        for versions in self._versions.values():
            versions.sort(key=lambda t: version_key(t.config.version), reverse=True)
        self._resolved: dict[str, PromptTool] = {}  # pinned and labelled names already resolved
        self._defaults: dict[str, PromptTool] = {}
        for name, versions in self._versions.items():
            chosen = _newest_served(versions)
            if chosen is not None:
                self._defaults[name] = chosen

    def served(self) -> list[PromptTool]:
        """The version each plain name serves, in config order."""
        return list(self._defaults.values())

    def listed(self) -> list[tuple[str, PromptTool]]:
        """What tools/list shows: each plain name, then `name.vN` for every other major line still served."""
        entries: list[tuple[str, PromptTool]] = []
        for name, default in self._defaults.items():
            entries.append((name, default))
            majors = {major(default.config.version)}
            for tool in self._versions[name]:
                line = major(tool.config.version)
                if line not in majors and tool.config.status in SERVED_STATUSES:
                    majors.add(line)
                    newest = _newest_served([t for t in self._versions[name] if major(t.config.version) == line])
                    if newest is not None:
                        entries.append((f"{name}.v{line}", newest))
        return entries

    def all(self) -> list[PromptTool]:
        """Every version of every tool, drafts and retired ones included."""
        return [tool for versions in self._versions.values() for tool in versions]

    def names(self) -> list[str]:
        return list(self._versions)

    def versions(self, name: str) -> list[PromptTool]:
        """Every version of `name`, newest first (empty if unknown)."""
        return list(self._versions.get(name, ()))

    def resolve(self, requested: str, *, version: str | None = None) -> PromptTool:
        """The tool version `requested` names (with `version`, as if written `<requested>.v<version>`:
        how REST URLs pin one). ToolNotFoundError says why when none is served; ToolRetiredError
        when what was asked for is retired."""
        if version is None:
            found = self._defaults.get(requested)  # the hot path: a plain name
            if found is not None:
                return found
        else:
            if requested not in self._versions:
                raise ToolNotFoundError(f"Unknown tool: '{requested}'")
            requested = f"{requested}.v{version}"
        found = self._resolved.get(requested)
        if found is None:
            found = self._resolve(requested)
            if len(self._resolved) < _MAX_REMEMBERED:
                self._resolved[requested] = found
        return found

    def _resolve(self, requested: str) -> PromptTool:
        versions = self._versions.get(requested)
        if versions is not None:
            return self._pick(requested, versions, what=f"tool '{requested}'")
        for base, suffix in _splits(requested):
            versions = self._versions.get(base)
            if versions is None:
                continue
            if suffix[:1] == "v" and suffix[1:2].isdigit():
                pin = suffix[1:]
                chosen = [t for t in versions if matches_pin(t.config.version, pin)]
                if chosen:
                    return self._pick(requested, chosen, what=f"tool '{base}' version {pin}")
                known = ", ".join(t.config.version for t in versions)
                raise ToolNotFoundError(f"Tool '{base}' has no version {pin} (versions: {known})")
            labelled = next((t for t in versions if suffix in t.config.labels), None)
            if labelled is not None:
                if labelled.config.status == "retired":
                    raise self._retired(labelled)
                return labelled
        raise ToolNotFoundError(f"Unknown tool: '{requested}'")

    get = resolve

    def base_name(self, requested: str) -> str | None:
        """The tool a requested name refers to (`summarize` for `summarize.v1`), served or not; None
        if it refers to none. Scopes and rate limits apply to this name, whatever the pin."""
        if requested in self._versions:
            return requested
        return next((base for base, _ in _splits(requested) if base in self._versions), None)

    def successor(self, tool: PromptTool) -> str | None:
        """What callers of a deprecated or retired version should use instead."""
        if tool.config.replacement:
            return tool.config.replacement
        default = self._defaults.get(tool.name)
        if default is not None and default is not tool and default.config.status == "published" \
                and version_key(default.config.version) > version_key(tool.config.version):
            return f"{tool.name}.v{major(default.config.version)}"
        return None

    def _pick(self, requested: str, versions: list[PromptTool], *, what: str) -> PromptTool:
        chosen = _newest_served(versions)
        if chosen is not None:
            return chosen
        retired = [t for t in versions if t.config.status == "retired"]
        if retired:
            raise self._retired(retired[0])
        raise ToolNotFoundError(f"{what[:1].upper()}{what[1:]} is a draft and not served"
                                " (a label such as '<name>.staging' reaches a draft)")

    def _retired(self, tool: PromptTool) -> ToolRetiredError:
        successor = self.successor(tool)
        config = tool.config
        when = f" on {config.sunset.isoformat()}" if config.sunset else ""
        instead = f"; use '{successor}' instead" if successor else ""
        return ToolRetiredError(f"Tool '{tool.name}' version {config.version} was retired{when}{instead}",
                                successor=successor, sunset=config.sunset)

    def __len__(self) -> int:
        return len(self._defaults)


def _newest_served(versions: list[PromptTool]) -> PromptTool | None:
    """Published before deprecated; newest first within each (versions come sorted newest first)."""
    for status in ("published", "deprecated"):
        for tool in versions:
            if tool.config.status == status:
                return tool
    return None


def _splits(requested: str) -> Iterator[tuple[str, str]]:
    """(base, suffix) for every way to read `requested` as '<base>.v<pin>' or '<base>.<label>'."""
    for i, char in enumerate(requested):
        if char == ".":
            base, suffix = requested[:i], requested[i + 1:]
            if suffix[:1] == "v" and suffix[1:2].isdigit():
                yield base, suffix
            elif "." not in suffix:
                yield base, suffix
