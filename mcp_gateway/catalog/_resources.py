"""MCP resources: fixed ones with their text, and RFC 6570 templates rendered per URI."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ._uri_template import UriTemplate

from .._errors import GatewayError, RenderError
from ..config import ResourceConfig
from ..templates import CompiledTemplate

__all__ = ["ResourceContent", "ResourceNotFoundError", "ResourceRegistry", "StaticResource", "TemplateResource"]


class ResourceNotFoundError(GatewayError):
    pass


@dataclass(frozen=True, slots=True)
class ResourceContent:
    uri: str
    mime_type: str
    text: str


@dataclass(frozen=True, slots=True)
class StaticResource:
    config: ResourceConfig
    text: str

    @property
    def uri(self) -> str:
        return self.config.uri or ""


@dataclass(frozen=True, slots=True)
class TemplateResource:
    config: ResourceConfig
    template: UriTemplate
    body: CompiledTemplate


class ResourceRegistry:
    def __init__(self, static: Iterable[StaticResource], templates: Iterable[TemplateResource]) -> None:
        self._static = {r.uri: r for r in static}
        self._templates = list(templates)

    def static(self) -> list[StaticResource]:
        return list(self._static.values())

    def templates(self) -> list[TemplateResource]:
        return list(self._templates)

    def read(self, uri: str) -> ResourceContent:
        """The text at `uri`; ResourceNotFoundError when nothing serves it."""
        if (found := self._static.get(uri)) is not None:
            return ResourceContent(uri, found.config.mime_type, found.text)
        for resource in self._templates:
            variables = resource.template.match(uri)
            if variables is not None:
                try:
                    text = resource.body.render(variables)
                except RenderError as exc:
                    raise RenderError(f"resource '{resource.config.name}': {exc}") from None
                return ResourceContent(uri, resource.config.mime_type, text)
        raise ResourceNotFoundError(f"Unknown resource: '{uri}'")
