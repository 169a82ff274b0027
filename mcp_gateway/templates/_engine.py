"""The template engine.

Templates are trusted files; arguments are untrusted data passed as the render context and are
never parsed as template source, so `{{ '{{' }}` in an argument stays literal text. The sandbox
blocks attribute walks; we add what it lacks: a cap on rendered size (checked while rendering,
and on `*`/`**` before they can build a huge value). A template that only substitutes names
(`_plain`) renders by joining, without running Jinja: it evaluates nothing, so the sandbox still
guards everything that is evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import missing

from .._errors import RenderError
from ._plain import PlainTemplate, plain_template

__all__ = ["CompiledTemplate", "RenderContext", "TemplateEngine", "TemplateSyntaxProblem"]


@dataclass(frozen=True, slots=True)
class TemplateSyntaxProblem:
    """A template that does not compile, or refers to something that does not exist."""

    message: str
    line: int  # 1-based, within the template text


class _FalsyStrictUndefined(jinja2.StrictUndefined):
    """Strict where a value is used (printed, iterated, walked into), but falsy in a test, so
    `{% if session.state.level %}` reads a missing key as "not set" instead of failing the call."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    __eq__ = jinja2.Undefined.__eq__
    __ne__ = jinja2.Undefined.__ne__
    __hash__ = jinja2.Undefined.__hash__


class _CappedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `*` and `**` refusing to build values past the cap."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, *, max_chars: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_chars = max_chars

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    if len(seq) * times > self.max_chars:
                        raise SecurityError("the result of '*' would exceed the rendered size cap")
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent too large")
        return super().call_binop(context, operator, left, right)


class RenderContext(dict[str, Any]):
    """Values already laid over one engine's globals, so each template of a call renders from
    this one dict (Jinja would otherwise copy its globals and the values for every template)."""

    __slots__ = ("base",)

    def __init__(self, base: dict[str, Any], *values: Mapping[str, Any]) -> None:
        super().__init__(base)
        for more in values:
            self.update(more)
        self.base = base


class CompiledTemplate:
    """A template compiled once; `render` checks the size cap while generating output.

    A plain template (`_plain`) renders by joining its pieces instead of running Jinja's code,
    with the same output, the same size check and the same errors."""

    __slots__ = ("_globals", "_max_chars", "_plain", "_template", "source")

    def __init__(self, template: jinja2.Template, source: str, max_chars: int,
                 globals: dict[str, Any] | None = None, plain: PlainTemplate | None = None) -> None:
        self._template = template
        # A plain dict (Jinja walks a ChainMap per render), one per engine: a context made by any
        # template of the engine is used as is by all of them.
        self._globals = dict(template.globals) if globals is None else globals
        self._max_chars = max_chars
        self._plain = plain
        self.source = source

    @property
    def is_plain(self) -> bool:
        """Whether this template renders without running Jinja (see `_plain`)."""
        return self._plain is not None

    def context(self, *values: Mapping[str, Any]) -> RenderContext:
        """One render context for `values` (later ones win), usable by every template of this engine."""
        return RenderContext(self._globals, *values)

    def render(self, context: Mapping[str, Any], *, budget: int | None = None) -> str:
        """Render with `context`; raise RenderError past `budget` characters (default: the cap)."""
        limit = self._max_chars if budget is None else budget
        plain = self._plain
        if plain is not None:  # needs no merged context: it falls back to the globals itself
            if type(context) is not dict and type(context) is not RenderContext:
                context = self.context(context)  # read other mappings as the merge would
            text = plain.quick(context)
            # Every value is there and printable: the only possible error is the size, and the
            # total is past the limit exactly when some chunk's running total is.
            if text is not None and len(text) <= limit:
                return text
            return self._join(plain, context, limit)
        if not (type(context) is RenderContext and context.base is self._globals):
            context = self.context(context)
        return self._run(context, limit)

    def _join(self, plain: PlainTemplate, context: dict[str, Any], limit: int) -> str:
        """What Jinja's generated code yields for a plain template, chunk by chunk: literal text,
        then `str()` of each name's value, read from `context` laid over the globals (the
        engine's undefined when neither has it)."""
        size = len(plain.head)
        if size > limit and plain.head_is_chunk:
            raise self._too_big()
        parts = [plain.head]
        get = context.get
        for name, after in plain.pairs:
            value = get(name, missing)
            if value is missing:
                value = self._globals.get(name, missing)
            try:
                if value is missing:
                    value = self._template.environment.undefined(name=name)
                text = str(value)
            except Exception as exc:
                raise _failure(exc) from None
            size += len(text) + len(after)
            if size > limit:
                raise self._too_big()
            parts.append(text)
            parts.append(after)
        return "".join(parts)

    def _run(self, context: RenderContext, limit: int) -> str:
        template = self._template
        # A shared context reads `context` as it is: top-level `{% set %}` writes to the Context's
        # own vars, never to this dict, so the templates of one call cannot see each other's sets.
        ctx = template.environment.context_class(
            template.environment, context, template.name, template.blocks, globals=self._globals)
        parts: list[str] = []
        size = 0
        try:
            for chunk in template.root_render_func(ctx):
                size += len(chunk)
                if size > limit:
                    raise self._too_big()
                parts.append(chunk)
        except RenderError:
            raise
        except Exception as exc:
            raise _failure(exc) from None
        return "".join(parts)

    def _too_big(self) -> RenderError:
        return RenderError(f"rendered prompt exceeds the limit of {self._max_chars} characters")


def _failure(exc: Exception) -> RenderError:
    """The RenderError for an exception raised while rendering."""
    if isinstance(exc, jinja2.UndefinedError):
        return RenderError(f"template variable is undefined: {exc.message}")
    if isinstance(exc, SecurityError):
        return RenderError(f"template refused an unsafe operation: {exc}")
    # a filter or test fed with unexpected data, or a value whose str() fails
    return RenderError(f"template failed: {type(exc).__name__}: {exc}")


class TemplateEngine:
    """Compiles the templates of one config; partials are reachable with {% include 'name' %}."""

    def __init__(self, *, partials: Mapping[str, str] | None = None, max_chars: int = 200_000) -> None:
        self.max_chars = max_chars
        self._partials = dict(partials or {})
        self._env = _CappedSandbox(
            max_chars=max_chars,
            loader=jinja2.DictLoader(self._partials),
            undefined=_FalsyStrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            auto_reload=False,
            cache_size=-1,
        )
        self._globals = dict(self._env.make_globals(None))  # what every template of this engine sees
        self._analysed: dict[str, tuple[jinja2.nodes.Template, Any] | Exception] = {}
        self._checked: dict[str, tuple[frozenset[str], tuple[TemplateSyntaxProblem, ...]]] = {}

    def check(self, source: str) -> tuple[set[str], list[TemplateSyntaxProblem]]:
        """Return the variables `source` reads (partials included) and any problems in it.

        Computed once per distinct source: tools generated from one pattern share their templates,
        and finding the variables runs Jinja's code generator over the whole tree."""
        found = self._checked.get(source)
        if found is None:
            variables: set[str] = set()
            problems: list[TemplateSyntaxProblem] = []
            self._walk(source, variables, problems, seen=set(), line_offset=None)
            found = frozenset(variables - set(self._env.globals)), tuple(problems)
            self._checked[source] = found
        return set(found[0]), list(found[1])

    def _walk(
        self, source: str, variables: set[str], problems: list[TemplateSyntaxProblem],
        *, seen: set[str], line_offset: int | None,
    ) -> None:
        analysed = self._analyse(source)
        if isinstance(analysed, jinja2.TemplateSyntaxError):  # TemplateAssertionError included
            line = (analysed.lineno or 1) if line_offset is None else line_offset
            problems.append(TemplateSyntaxProblem(f"template syntax error: {analysed.message}", line))
            return
        if isinstance(analysed, RecursionError):
            problems.append(TemplateSyntaxProblem("template is nested too deeply", line_offset or 1))
            return
        ast = analysed[0]
        variables |= meta.find_undeclared_variables(ast)
        for node in ast.find_all((jinja2.nodes.Filter, jinja2.nodes.Test)):  # inside {% if %} Jinja waits
            known = self._env.filters if isinstance(node, jinja2.nodes.Filter) else self._env.tests
            if node.name not in known:
                kind = "filter" if isinstance(node, jinja2.nodes.Filter) else "test"
                line = node.lineno if line_offset is None else line_offset
                problems.append(TemplateSyntaxProblem(f"template syntax error: no {kind} named '{node.name}'", line))
        for node in ast.find_all(jinja2.nodes.Include):
            line = node.lineno if line_offset is None else line_offset
            name = node.template.value if isinstance(node.template, jinja2.nodes.Const) else None
            if not isinstance(name, str):
                problems.append(TemplateSyntaxProblem("include needs a literal partial name", line))
            elif name not in self._partials:
                known = ", ".join(sorted(self._partials)) or "none defined"
                problems.append(TemplateSyntaxProblem(f"unknown partial '{name}' (partials: {known})", line))
            elif name in seen:
                problems.append(TemplateSyntaxProblem(f"partial '{name}' includes itself", line))
            else:
                self._walk(self._partials[name], variables, problems, seen=seen | {name}, line_offset=line)
        for node in ast.find_all((jinja2.nodes.Extends, jinja2.nodes.Import, jinja2.nodes.FromImport)):
            line = node.lineno if line_offset is None else line_offset
            problems.append(TemplateSyntaxProblem("only {% include %} of partials is supported", line))

    def _analyse(self, source: str) -> tuple[jinja2.nodes.Template, Any] | Exception:
        """Parse and compile `source` once (partials are included by many templates): the tree and
        code, or the error. Unknown filters are found only when compiling."""
        found = self._analysed.get(source)
        if found is None:
            try:
                ast = self._env.parse(source)
                found = (ast, self._env.compile(ast))
            except (jinja2.TemplateSyntaxError, RecursionError) as exc:
                found = exc
            self._analysed[source] = found
        return found

    def variable_lines(self, source: str) -> dict[str, int]:
        """The first line of `source` reading each variable; a partial's reads are on its include line."""
        lines: dict[str, int] = {}
        self._lines(source, lines, seen=set(), line_offset=None)
        return lines

    def _lines(self, source: str, lines: dict[str, int], *, seen: set[str], line_offset: int | None) -> None:
        analysed = self._analyse(source)
        if isinstance(analysed, Exception):
            return
        ast = analysed[0]
        for node in ast.find_all(jinja2.nodes.Name):
            if node.ctx == "load":
                line = node.lineno if line_offset is None else line_offset
                lines[node.name] = min(line, lines.get(node.name, line))
        for node in ast.find_all(jinja2.nodes.Include):
            name = node.template.value if isinstance(node.template, jinja2.nodes.Const) else None
            if isinstance(name, str) and name in self._partials and name not in seen:
                line = node.lineno if line_offset is None else line_offset
                self._lines(self._partials[name], lines, seen=seen | {name}, line_offset=line)

    def compile(self, source: str) -> CompiledTemplate:
        """The compiled template for `source`; call `check` first, this assumes it is valid."""
        analysed = self._analyse(source)
        if isinstance(analysed, Exception):
            raise analysed
        template = self._env.template_class.from_code(self._env, analysed[1], self._env.make_globals(None), None)
        return CompiledTemplate(template, source, self.max_chars, self._globals, self._plain(analysed[0]))

    def _plain(self, ast: jinja2.nodes.Template) -> PlainTemplate | None:
        """`ast` as a plain template, if it is one and this environment prints values with bare
        `str()` (no autoescape, no finalize): then joining is exactly what Jinja would do."""
        if self._env.autoescape is not False or self._env.finalize is not None:
            return None
        return plain_template(ast, self._partial_tree)

    def _partial_tree(self, name: str) -> jinja2.nodes.Template | None:
        source = self._partials.get(name)
        analysed = None if source is None else self._analyse(source)
        return analysed[0] if isinstance(analysed, tuple) else None
