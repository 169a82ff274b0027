"""Turn a loaded config into what the gateway serves, compiling every schema and template once.

Problems found here (bad JSON Schema, template syntax, variables a schema does not declare) are
returned as located ConfigIssues, all of them, so that one `validate` run shows everything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

from .._errors import ConfigIssue, ToolNotFoundError
from ..config import LoadedConfig, Located, Origin, TextRef, ToolConfig
from ..templates import CompiledTemplate, TemplateEngine
from ._prompts import PromptEntry, PromptRegistry
from ._resources import ResourceRegistry, StaticResource, TemplateResource
from ._schema import compile_validator
from ._testspec import check_tests
from ._tools import PromptTool, ToolRegistry

__all__ = ["Catalog", "build_catalog"]

_META = Draft202012Validator(  # what check_schema uses; iterated here to report every error
    Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Everything a config serves: tools, prompts and resources."""

    tools: ToolRegistry
    prompts: PromptRegistry
    resources: ResourceRegistry


def build_catalog(loaded: LoadedConfig) -> tuple[Catalog, list[ConfigIssue]]:
    builder = _Builder(loaded)
    return builder.build(), builder.issues


class _Builder:
    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.issues: list[ConfigIssue] = []
        self._checked: dict[str, list[Any]] = {}
        testing = loaded.testing
        self._judge = testing is not None and testing.value.judge is not None
        self.engine = TemplateEngine(
            partials={name: p.value for name, p in loaded.partials.items()},
            max_chars=loaded.limits.max_rendered_chars,
        )

    def build(self) -> Catalog:
        for partial in self.loaded.partials.values():
            for ref in partial.texts:
                self._templates([ref], allowed=None)
        built = [(item, self._tool(item)) for item in self.loaded.tools]
        registry = ToolRegistry(t for _, t in built if t is not None)
        for item, tool in built:
            if tool is not None:
                self._lifecycle(item, registry)
        prompts = [p for p in (self._prompt(item) for item in self.loaded.prompts) if p is not None]
        prompts += [PromptEntry.from_tool(t) for t in registry.served() if t.config.prompt]
        static: list[StaticResource] = []
        templated: list[TemplateResource] = []
        for item in self.loaded.resources:
            resource = self._resource(item)
            if isinstance(resource, StaticResource):
                static.append(resource)
            elif resource is not None:
                templated.append(resource)
        return Catalog(registry, PromptRegistry(prompts, registry), ResourceRegistry(static, templated))

    # -- pieces -----------------------------------------------------------------------------

    def _schema_errors(self, schema: Mapping[str, Any]) -> list[Any]:
        """Metaschema errors, computed once per distinct schema: many tools share the same shapes,
        and checking against the 2020-12 metaschema is the slowest step of loading a config."""
        key = json.dumps(schema, sort_keys=True, default=repr)
        if key not in self._checked:
            self._checked[key] = sorted(_META.iter_errors(schema), key=lambda e: list(map(str, e.absolute_path)))
        return self._checked[key]

    def _schema(self, origin: Origin, key: str, schema: Mapping[str, Any]) -> Draft202012Validator | None:
        errors = self._schema_errors(schema)
        for error in errors:  # every error, not only the first that check_schema raises
            where = (key, *error.absolute_path)
            self.issues.append(origin.issue(where, f"invalid JSON Schema: {error.message}"))
        if errors:
            return None
        if schema.get("type") != "object":
            self.issues.append(origin.issue((key,), "must be an object schema ('type: object'), as MCP requires"))
            return None
        validator = compile_validator(schema)
        for name, spec in schema.get("properties", {}).items():
            if isinstance(spec, Mapping) and "default" in spec:
                errors = list(compile_validator(spec).iter_errors(spec["default"]))
                if errors:
                    self.issues.append(origin.issue(
                        (key, "properties", name, "default"), f"default fails its own schema: {errors[0].message}"))
        return validator

    def _templates(self, refs: Iterable[TextRef], *, allowed: set[str] | None, what: str = "") -> list[CompiledTemplate]:
        compiled: list[CompiledTemplate] = []
        for ref in refs:
            variables, problems = self.engine.check(ref.text)
            for problem in problems:
                self.issues.append(ref.issue(problem.line, problem.message))
            if allowed is not None and variables - allowed:
                lines = self.engine.variable_lines(ref.text)
                for name in sorted(variables - allowed):
                    known = ", ".join(sorted(allowed)) or "none"
                    self.issues.append(ref.issue(
                        lines.get(name, 1), f"template uses '{name}', which is not {what} (declared: {known})"))
            if not problems:
                compiled.append(self.engine.compile(ref.text))
        return compiled

    def _tool(self, item: Located[ToolConfig]) -> PromptTool | None:
        config, origin = item.value, item.origin
        before = len(self.issues)
        validator = self._schema(origin, "input_schema", config.input_schema)
        output = self._schema(origin, "output_schema", config.output_schema) \
            if config.output_schema is not None else None
        properties = config.input_schema.get("properties", {})
        declared = set(properties) if isinstance(properties, Mapping) else set()
        if config.context is not None:
            declared.add("session")  # session.id, session.history, session.state
        compiled = self._templates(item.texts, allowed=declared, what="a property in input_schema")
        if len(self.issues) > before or validator is None or len(compiled) != len(config.messages):
            return None
        limits = self.loaded.limits
        return PromptTool(
            config=config,
            messages=tuple((m.role, t) for m, t in zip(config.messages, compiled, strict=True)),
            input_validator=validator,
            output_validator=output,
            max_rendered_chars=limits.max_rendered_chars,
        )

    def _lifecycle(self, item: Located[ToolConfig], registry: ToolRegistry) -> None:
        """A replacement must name a tool that exists; tests must fit the tool they test."""
        config, origin = item.value, item.origin
        if config.replacement is not None:
            try:
                target = registry.resolve(config.replacement)
            except ToolNotFoundError as exc:
                self.issues.append(origin.issue(("replacement",), f"replacement '{config.replacement}': {exc}"))
            else:
                if target.name == config.name and target.config.version == config.version:
                    self.issues.append(origin.issue(("replacement",), "a tool version cannot replace itself"))
        tool = next(t for t in registry.versions(config.name) if t.config is config)
        self.issues += check_tests(tool, origin, has_judge=self._judge)

    def _prompt(self, item: Located[Any]) -> PromptEntry | None:
        config = item.value
        before = len(self.issues)
        for i, message in enumerate(config.messages):
            if message.role == "system":
                self.issues.append(item.origin.issue(
                    ("messages", i, "role"), "MCP prompts have no system role; use 'user' or 'assistant'"))
        compiled = self._templates(item.texts, allowed={a.name for a in config.arguments}, what="a declared argument")
        if len(self.issues) > before or len(compiled) != len(config.messages):
            return None
        messages = tuple((m.role, t) for m, t in zip(config.messages, compiled, strict=True))
        return PromptEntry.from_config(config, messages, self.loaded.limits.max_rendered_chars)

    def _resource(self, item: Located[Any]) -> StaticResource | TemplateResource | None:
        config, (ref,) = item.value, item.texts
        if config.uri is not None:
            return StaticResource(config, ref.text)
        try:
            template = UriTemplate.parse(config.uri_template)
        except InvalidUriTemplate as exc:
            self.issues.append(item.origin.issue(("uri_template",), f"invalid URI template: {exc}"))
            return None
        compiled = self._templates([ref], allowed=set(template.variable_names), what="a variable of uri_template")
        return TemplateResource(config, template, compiled[0]) if compiled else None
