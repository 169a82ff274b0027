"""Rendering a tool's messages from one shared render context (built once per call) behaves as a
fresh Jinja context per template did: globals, partials, undefined handling, caps and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_gateway._errors import RenderError
from mcp_gateway._gateway import load_gateway
from mcp_gateway.templates import TemplateEngine

CONFIG = """\
format: mcp-gateway/1
providers:
  offline: {kind: mock}
models:
  default: {provider: offline, model: mock-1}
limits:
  max_rendered_chars: 400
partials:
  style: {file: style.j2}
tools:
  - name: shaped
    description: Uses globals, a partial and top-level sets.
    model: default
    input_schema:
      type: object
      properties:
        text: {type: string}
        audience: {type: string, default: general}
        extra: {type: string}
        times: {type: integer, default: 1}
      required: [text]
    messages:
      - role: system
        content: >-
          {% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% endfor %}
          {%- set mine = 'sys' %}
          n={{ ns.n }} {{ dict(a=1) | list | join }} {{ lipsum is defined }} {% include 'style' %} {{ mine }}
      - role: user
        content: "{{ text * times }}|{{ range }}"
  - name: strict
    description: Prints a missing key.
    model: default
    input_schema: {type: object, properties: {data: {type: object}}}
    messages:
      - role: user
        content: "{{ data.missing }}"
  - name: unsafe
    description: Walks into an attribute the sandbox refuses.
    model: default
    input_schema: {type: object, properties: {text: {type: string}}}
    messages:
      - role: user
        content: "{{ text.__class__.__mro__ }}"
"""
STYLE = "Style for {{ audience }}{% if extra %} ({{ extra }}){% endif %}."


def write(root: Path, config: str = CONFIG, style: str = STYLE) -> Path:
    (root / "style.j2").write_text(style, encoding="utf-8")
    (root / "gateway.yaml").write_text(config, encoding="utf-8")
    return root / "gateway.yaml"


@pytest.fixture()
def gateway(tmp_path: Path):
    return load_gateway(write(tmp_path), environ={})


def test_globals_partials_and_sets_render_per_message(gateway) -> None:
    tool = gateway.catalog.tools.resolve("shaped")
    system, user = tool.render(tool.validate({"text": "{{ 1 + 1 }}", "extra": "x"}))
    assert system.content == " n=3 a True Style for general (x). sys"
    assert user.content.startswith("{{ 1 + 1 }}|")  # arguments stay data
    assert "range" in user.content  # the global


def test_a_top_level_set_stays_in_its_own_template() -> None:
    engine = TemplateEngine()
    first, second = engine.compile("{% set mine = 'a' %}{{ mine }}"), engine.compile("{{ mine is defined }}")
    context = first.context({"text": "t"})
    assert context.base is second.context().base  # one engine: the context is used as is, not copied
    assert first.render(context) == "a"
    assert second.render(context) == "False"
    assert "mine" not in context


def test_an_argument_named_like_a_global_wins(tmp_path: Path) -> None:
    engine = TemplateEngine()
    template = engine.compile("{{ range }}-{{ lipsum is defined }}")
    assert template.render({"range": "mine"}) == "mine-True"
    assert template.render(template.context({"range": "a"}, {"range": "b"})) == "b-True"
    # a context from another engine is not mistaken for this one's: it is merged again
    other = TemplateEngine().compile("x").context({"range": "c"})
    other.pop("lipsum")
    assert template.render(other) == "c-True"


def test_undefined_is_falsy_in_a_test_and_strict_when_printed(gateway) -> None:
    tool = gateway.catalog.tools.resolve("shaped")
    system, _ = tool.render(tool.validate({"text": "t"}))
    assert "(" not in system.content  # `extra` not given: the `if` reads it as unset
    strict = gateway.catalog.tools.resolve("strict")
    undefined = r"tool 'strict', user message: template variable is undefined: .*missing"
    with pytest.raises(RenderError, match=undefined):
        strict.render(strict.validate({"data": {}}))


def test_size_cap_and_sandbox_errors_are_kept(gateway) -> None:
    tool = gateway.catalog.tools.resolve("shaped")
    with pytest.raises(RenderError, match="rendered prompt exceeds the limit of 400 characters"):
        tool.render(tool.validate({"text": "y" * 100, "times": 4}))
    with pytest.raises(RenderError, match="refused an unsafe operation: the result of '\\*' would exceed"):
        tool.render(tool.validate({"text": "y" * 100, "times": 10}))
    unsafe = gateway.catalog.tools.resolve("unsafe")
    with pytest.raises(RenderError, match="template refused an unsafe operation"):
        unsafe.render(unsafe.validate({"text": "t"}))


def test_a_reload_builds_fresh_templates(tmp_path: Path) -> None:
    first = load_gateway(write(tmp_path), environ={})
    second = load_gateway(write(tmp_path, style=STYLE.replace("Style for", "Voice for")), environ={})
    args = {"text": "t"}
    old, new = (g.catalog.tools.resolve("shaped") for g in (first, second))
    assert "Style for general" in old.render(old.validate(args))[0].content
    assert "Voice for general" in new.render(new.validate(args))[0].content
