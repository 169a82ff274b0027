"""Recognising plain templates: literal text and `{{ name }}`, nothing Jinja would have to evaluate.

Most prompt templates only substitute top-level arguments into text. For those, the parsed tree
says everything a render does: Jinja's lexer has already applied the whitespace rules
(`trim_blocks`, `lstrip_blocks`, `{%-`/`-%}`, the dropped trailing newline, newline normalising,
`{% raw %}`, comments) to the text nodes, and what remains is looking names up and `str()`-ing
them. Such a template renders as a join, without building a Jinja runtime Context per template.

This evaluates nothing: no expression, filter, test, attribute, call or statement is accepted, so
everything the sandbox guards still goes through the sandbox, and a plain template cannot reach
anything a sandboxed render could not (it looks names up in the same render context and converts
them exactly as Jinja's generated code does, `str(value)`, with the engine's undefined for a
missing name).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from jinja2 import nodes

__all__ = ["PlainTemplate", "plain_template"]

# Names Jinja's code generator binds itself (`{{ self }}` is the template), never from the context.
_BOUND_BY_JINJA = frozenset({"self", "loop", "caller", "varargs", "kwargs", "super"})


class PlainTemplate:
    """`head`, then for each pair the value of `name` followed by literal text."""

    __slots__ = ("_format", "_values", "head", "head_is_chunk", "pairs")

    def __init__(self, head: str, pairs: tuple[tuple[str, str], ...], head_is_chunk: bool) -> None:
        self.head = head
        self.pairs = pairs  # (name, literal text after it)
        # Whether Jinja yields a chunk for `head` (it may be empty: `{{ '' }}`): the size check runs
        # per chunk, which only shows when a budget is negative.
        self.head_is_chunk = head_is_chunk
        # `%s` is `str()`; one C-level format and one lookup for every name, for the common case.
        self._format = head.replace("%", "%%") + "".join("%s" + after.replace("%", "%%") for _, after in pairs)
        self._values = _getter([name for name, _ in pairs])

    def quick(self, context: dict[str, Any]) -> str | None:
        """The text when every name is in `context` (a plain dict) and `str()` takes each value;
        None otherwise, for the caller to go chunk by chunk. Lookups and `str()` have no effects
        on data, so trying twice is as if once."""
        try:
            return self._format % self._values(context)
        except Exception:  # KeyError, or a value whose str() fails: the chunk-by-chunk way says which
            return None


def _getter(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function reading `names` from a dict as a tuple (KeyError for a missing one)."""
    if len(names) > 1:
        return operator.itemgetter(*names)
    if names:
        name = names[0]
        return lambda context: (context[name],)
    return lambda context: ()


def plain_template(
    ast: nodes.Template, partial: Callable[[str], nodes.Template | None],
) -> PlainTemplate | None:
    """The pieces of `ast` if it is plain, includes of plain partials inlined; None otherwise.

    `partial(name)` gives a partial's parsed tree (None if it has none). Only what the sandboxed
    render would treat exactly like this qualifies: the environment must not autoescape or finalize,
    which the caller checks."""
    literals: list[str] = [""]
    names: list[str] = []
    head_is_chunk = False

    def walk(template: nodes.Template, seen: frozenset[str]) -> bool:
        nonlocal head_is_chunk
        for node in template.body:
            if type(node) is nodes.Output:
                for child in node.nodes:
                    if type(child) is nodes.TemplateData:
                        literals[-1] += child.data
                        head_is_chunk = head_is_chunk or not names
                    elif type(child) is nodes.Const and type(child.value) is str:
                        literals[-1] += child.value
                        head_is_chunk = head_is_chunk or not names
                    elif (type(child) is nodes.Name and child.ctx == "load"
                          and child.name not in _BOUND_BY_JINJA):
                        names.append(child.name)
                        literals.append("")
                    else:
                        return False
            elif (type(node) is nodes.Include and node.with_context and not node.ignore_missing
                  and type(node.template) is nodes.Const and type(node.template.value) is str):
                name = node.template.value
                if name in seen:
                    return False
                included = partial(name)
                if included is None or not walk(included, seen | {name}):
                    return False
            else:
                return False
        return True

    if not walk(ast, frozenset()):
        return None
    return PlainTemplate(literals[0], tuple(zip(names, literals[1:], strict=True)), head_is_chunk)
