"""Plain templates (literal text, `{{ name }}`, includes of plain partials) render by joining
instead of running Jinja; the output and the errors must be exactly those of the sandboxed render.

Every case renders through both ways: the engine as served, and the same engine with the plain
path switched off (every template then runs Jinja's generated code in the sandbox)."""

from __future__ import annotations

import collections
import dataclasses
import random
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import pytest
from markupsafe import Markup

from mcp_gateway._errors import RenderError
from mcp_gateway._gateway import load_gateway
from mcp_gateway.templates import CompiledTemplate, TemplateEngine

MAX_CHARS = 2_000

PARTIALS = {
    "plain": "Style for {{ a }}.",
    "trailing": "ends with newlines {{ b }}\n\n",
    "one_newline": "one newline\n",
    "windows": "crlf\r\nline {{ a }}\r\n",
    "markers": "  {{- a -}}  \n  {#- note -#}  x  {{- b }}\n",
    "raw": "{% raw %}{{ not_a_name }}{% endraw %}{{ a }}",
    "nested": "[{% include 'plain' %}|{% include 'trailing' %}]",
    "deeper": "<{% include 'nested' %}>",
    "empty": "",
    "filtered": "{{ a | upper }}",
    "has_if": "{% if a %}yes{% endif %}",
    "nests_filtered": "({% include 'filtered' %})",
}

PLAIN = [
    "",
    "plain text",
    "\n",
    "   ",
    "{{ a }}",
    "{{a}}{{b}}",
    "x {{ a }} y {{ b }} z\n",
    "trailing\n\n",
    "trailing once\n",
    "line\r\nwindows {{ a }}\r\n",
    "old mac\rline {{ a }}\r",
    "{{- a -}}  text  {{- b }}",
    "text   {{- a -}}   \n  more\n",
    "  {{- a }}\n\n  {{ b -}}\n\n",
    "{# comment #}{{ a }}{# c #}",
    "a {#- trim both -#} b",
    "{% raw %}{{ a }} {% if %}{% endraw %}{{ b }}",
    "{{ '{{' }}{{ a }}{{ '}}' }}",
    "{{ \"quoted\" }} and {{ a }}",
    "{{ '' }}",
    "{{ '' }}{{ a }}",
    "{% include 'empty' %}{{ a }}",
    "{% include 'plain' %}",
    "head {% include 'plain' %} tail\n",
    "head\n{% include 'plain' %}\ntail\n",
    "{%- include 'markers' -%}\n  x",
    "  {%- include 'trailing' %}  after",
    "{% include 'one_newline' %}{% include 'one_newline' %}",
    "{% include 'windows' %}",
    "{% include 'raw' %}",
    "{% include 'nested' %} and {% include 'deeper' %}",
    "[{% include 'empty' %}]",
    "{% include \"plain\" %}{{ a }}{% include 'plain' %}",
    "{{ missing }}",
    "{{ a }} then {{ missing }} then {{ b }}",
    "{{ range }} {{ a }}",
    "100% {{ a }} %s %(a)s %% {{ b }}%",
    "%{{ a }}",
    "{{ namespace }}",
    "{{ dict }}",
    "{{ lipsum }}",
    "\u00e9\u4e2d\U0001f600 {{ a }} \u2028 {{ b }}",
    "x" * 500 + "{{ a }}" + "y" * 500,
]

NOT_PLAIN = [
    "{{ a | upper }}",
    "{{ a.b }}",
    "{{ a['b'] }}",
    "{{ a() }}",
    "{{ a ~ b }}",
    "{{ a if b else 'c' }}",
    "{{ 1 }}",
    "{{ none }}",
    "{{ self }}",
    "{{ loop }}",
    "{% if a %}x{% endif %}{{ b }}",
    "{% for x in [1, 2] %}{{ a }}{% endfor %}",
    "{% set a = 'local' %}{{ a }}",
    "{% include 'filtered' %}",
    "{% include 'has_if' %}",
    "{% include 'nests_filtered' %}",
    "{% include 'plain' without context %}",
    "{% include 'plain' ignore missing %}",
    "{% filter upper %}{{ a }}{% endfilter %}",
    "{% with a = 'w' %}{{ a }}{% endwith %}",
    "{% macro m() %}{{ a }}{% endmacro %}{{ m() }}",
    "{{ a is defined }}",
]


class _BadStr:
    def __str__(self) -> str:
        raise ValueError("no text for you")


class _Unhashable(list[Any]):
    pass


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = [value, {"k": value}] if i % 2 else {"k": value, "n": None}
    return value


VALUES: list[Any] = [
    "", "text", "{{ 7 * 7 }}", "{% for x in y %}", "}}{{", "{{ a }}", "{% include 'plain' %}",
    "\x00\x01\x7f", "\r\n\n\r", "  padded  ", "\u00e9\U0001f600\ud800", "'\"\\",
    "x" * (MAX_CHARS - 10), "x" * (MAX_CHARS + 1), "y" * 100_000,
    Markup("<b>bold</b>"), Markup(""),
    None, True, False, 0, -1, 1.5, -0.0, 1e300, float("nan"), float("inf"), 10**50, 10**5000,
    [], {}, [1, "two", None, True], {"k": "v", "q": "'\"", "n": [1, {"x": None}]}, (1, 2), {3},
    _nested(6), _BadStr(), _Unhashable([1]), jinja2.Undefined(name="given"),
]


class _JinjaOnly(TemplateEngine):
    """The same engine with the plain path switched off: every template runs in the sandbox."""

    def _plain(self, ast: jinja2.nodes.Template) -> None:
        return None


def engines(partials: Mapping[str, str] = PARTIALS) -> tuple[TemplateEngine, TemplateEngine]:
    return (TemplateEngine(partials=partials, max_chars=MAX_CHARS),
            _JinjaOnly(partials=partials, max_chars=MAX_CHARS))


def compiled(engine: TemplateEngine, source: str) -> CompiledTemplate:
    _, problems = engine.check(source)
    assert not problems, (source, problems)
    return engine.compile(source)


def outcome(template: CompiledTemplate, context: Mapping[str, Any], budget: int | None) -> tuple[str, str]:
    try:
        return "ok", template.render(context, budget=budget)
    except RenderError as exc:
        return "error", str(exc)


def contexts(template: CompiledTemplate, a: Any, b: Any) -> list[Mapping[str, Any]]:
    """The ways a render is given values: a shared context of the engine, a plain dict, a dict
    shadowing globals, one without `b`, an empty one."""
    return [
        template.context({"a": None, "b": "default b"}, {"a": a, "b": b}),
        {"a": a, "b": b},
        {"a": a, "b": b, "range": a, "lipsum": "mine", "missing": b},
        {"a": a},
        {},
        collections.defaultdict(lambda: "from __missing__", {"a": a}),
        types.MappingProxyType({"a": a, "b": b}),
    ]


def assert_same(fast: CompiledTemplate, general: CompiledTemplate, a: Any, b: Any) -> None:
    for fast_context, general_context in zip(contexts(fast, a, b), contexts(general, a, b), strict=True):
        expected_full = outcome(general, general_context, None)
        length = len(expected_full[1]) if expected_full[0] == "ok" else 50
        for budget in (None, 0, 1, length - 1, length, length + 1, MAX_CHARS // 2):
            expected = outcome(general, general_context, budget)
            assert outcome(fast, fast_context, budget) == expected, (fast.source, a, b, budget)


@pytest.mark.parametrize("source", PLAIN)
def test_plain_templates_render_like_the_sandbox(source: str) -> None:
    fast_engine, general_engine = engines()
    fast, general = compiled(fast_engine, source), compiled(general_engine, source)
    assert fast.is_plain and not general.is_plain
    for a in VALUES:
        assert_same(fast, general, a, "b-value")
    for b in VALUES:
        assert_same(fast, general, "a-value", b)


@pytest.mark.parametrize("source", NOT_PLAIN)
def test_other_templates_keep_the_sandbox(source: str) -> None:
    fast_engine, general_engine = engines()
    fast, general = compiled(fast_engine, source), compiled(general_engine, source)
    assert not fast.is_plain
    for a in VALUES:
        assert_same(fast, general, a, "b-value")


def test_the_sandbox_still_refuses_what_it_refused() -> None:
    engine = TemplateEngine(max_chars=MAX_CHARS)
    walk = compiled(engine, "{{ a.__class__.__mro__ }}")
    assert not walk.is_plain
    with pytest.raises(RenderError, match="refused an unsafe operation"):
        walk.render({"a": "x"})


def test_errors_come_in_the_order_jinja_yields_chunks() -> None:
    fast, general = (compiled(e, "{{ a }}{{ missing }}{{ b }}") for e in engines())
    for template in (fast, general):
        with pytest.raises(RenderError, match="exceeds the limit of 2000 characters"):
            template.render({"a": "x" * 30, "b": "y"}, budget=20)  # too big before the undefined name
        with pytest.raises(RenderError, match="^template variable is undefined: 'missing' is undefined$"):
            template.render({"a": "x" * 10, "b": "y" * 100}, budget=20)  # undefined before too big
        with pytest.raises(RenderError, match="^template failed: ValueError: no text for you$"):
            template.render({"a": _BadStr(), "missing": 1}, budget=20)


def _random_source(rng: random.Random) -> str:
    """A template made of plain pieces in random order, whitespace and markers included."""
    pieces = [
        lambda: rng.choice(["", " ", "  ", "\n", "\n\n", "\r\n", "\t", "text", "{", "}", "%", "#", "-"]),
        lambda: "{{" + rng.choice(["", "-"]) + rng.choice(["", " ", "  "]) + rng.choice(["a", "b", "missing"])
        + rng.choice(["", " "]) + rng.choice(["", "-"]) + "}}",
        lambda: "{#" + rng.choice(["", "-"]) + " c " + rng.choice(["", "-"]) + "#}",
        lambda: "{%" + rng.choice(["", "-"]) + " include '"
        + rng.choice(["plain", "trailing", "markers", "windows", "nested", "one_newline"])
        + "' " + rng.choice(["", "-"]) + "%}",
        lambda: "{%" + rng.choice(["", "-"]) + " raw " + rng.choice(["", "-"]) + "%} {{ a }} "
        + "{%" + rng.choice(["", "-"]) + " endraw " + rng.choice(["", "-"]) + "%}",
    ]
    return "".join(rng.choice(pieces)() for _ in range(rng.randint(0, 12)))


def test_random_plain_templates_render_like_the_sandbox() -> None:
    rng = random.Random(20261207)
    fast_engine, general_engine = engines()
    tried = 0
    for _ in range(400):
        source = _random_source(rng)
        if fast_engine.check(source)[1]:  # a stray "{" and "%" can make a broken tag: not a template
            continue
        tried += 1
        fast, general = compiled(fast_engine, source), compiled(general_engine, source)
        assert fast.is_plain, source
        for a, b in (("A", "B"), ("", None), ("{{ b }}", "\r\n"), (10**5000, 1), ("x" * 1500, "y" * 600)):
            assert_same(fast, general, a, b)
    assert tried > 300


CONFIG = """\
format: mcp-gateway/1
providers:
  offline: {kind: mock}
models:
  default: {provider: offline, model: mock-1}
limits:
  max_rendered_chars: 300
partials:
  style: {file: style.j2}
tools:
  - name: plain
    description: Substitution only.
    model: default
    input_schema:
      type: object
      properties:
        text: {type: string}
        audience: {type: string, default: general}
        count: {type: integer, default: 3}
        note: {type: string}
        data: {type: object}
      required: [text]
    messages:
      - role: system
        content: |
          Write for a {{ audience }} audience.
          {% include "style" %}
      - role: user
        content: |
          In {{ count }} sentences ({{ note }}, {{ data }}):

          {{ text }}
  - name: mixed
    description: One plain message, one that is not.
    model: default
    input_schema:
      type: object
      properties:
        text: {type: string}
        audience: {type: string, default: general}
      required: [text]
    messages:
      - role: system
        content: "For {{ audience }}. {% include 'style' %}"
      - role: user
        content: "{{ text | upper }}"
"""


def write(root: Path, style: str = "House style: {{ audience }}, plain words.\n") -> Path:
    (root / "style.j2").write_text(style, encoding="utf-8")
    (root / "gateway.yaml").write_text(CONFIG, encoding="utf-8")
    return root / "gateway.yaml"


def _general(tool: Any, source_engine: TemplateEngine) -> Any:
    messages = tuple((role, source_engine.compile(t.source)) for role, t in tool.messages)
    return dataclasses.replace(tool, messages=messages)


def _rendered(tool: Any, arguments: Mapping[str, Any], extra: Mapping[str, Any] | None) -> Any:
    try:
        return [(m.role, m.content) for m in tool.render(arguments, extra=extra)]
    except RenderError as exc:
        return str(exc)


def test_tools_render_the_same_either_way(tmp_path: Path) -> None:
    gateway = load_gateway(write(tmp_path), environ={})
    style = "House style: {{ audience }}, plain words.\n"
    general_engine = _JinjaOnly(partials={"style": style}, max_chars=300)
    plain, mixed = gateway.catalog.tools.resolve("plain"), gateway.catalog.tools.resolve("mixed")
    assert [t.is_plain for _, t in plain.messages] == [True, True]
    assert [t.is_plain for _, t in mixed.messages] == [True, False]
    cases: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        ({"text": "t"}, None),
        ({"text": "t", "note": "n", "data": {"k": [1, None]}}, None),
        ({"text": "{{ audience }}", "audience": "expert", "count": 0}, {}),
        ({"text": "t"}, {"session": {"id": "s"}, "audience": "from extra"}),
        ({"text": "t" * 200}, None),  # over the cap across the two messages
        ({"text": "t" * 400}, None),
        ({"text": None, "count": None}, None),
        ({}, None),
    ]
    for tool in (plain, mixed):
        general = _general(tool, general_engine)
        for arguments, extra in cases:
            expected = _rendered(general, arguments, extra)
            assert _rendered(tool, arguments, extra) == expected, (tool.name, arguments)
    first = plain.render({"text": "t"})
    assert first[0].content == "Write for a general audience.\nHouse style: general, plain words."
    assert first[1].content == "In 3 sentences (None, None):\n\nt"


def test_a_reload_inlines_the_new_partial(tmp_path: Path) -> None:
    old = load_gateway(write(tmp_path), environ={}).catalog.tools.resolve("plain")
    new_path = write(tmp_path, style="Voice: {{ audience }}.")
    new = load_gateway(new_path, environ={}).catalog.tools.resolve("plain")
    assert old.render({"text": "t"})[0].content.endswith("House style: general, plain words.")
    assert new.render({"text": "t"})[0].content.endswith("Voice: general.")
    assert new.messages[0][1].is_plain


def test_the_example_summarize_takes_the_plain_path() -> None:
    root = Path(__file__).resolve().parents[2]
    tool = load_gateway(root / "examples" / "gateway.yaml", environ={}).catalog.tools.resolve("summarize")
    assert all(template.is_plain for _, template in tool.messages)
