"""Prompt templates: Jinja2's immutable sandbox, compiled once at load, rendered with a size cap."""

from ._engine import CompiledTemplate, TemplateEngine, TemplateSyntaxProblem

__all__ = ["CompiledTemplate", "TemplateEngine", "TemplateSyntaxProblem"]
