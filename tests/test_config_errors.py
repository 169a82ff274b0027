"""Every error the config loader reports: exact file, line, column, config path and message.

Each test writes small YAML files into `tmp_path` and runs the whole pipeline with `load_gateway`
(load -> compile templates and schemas -> build providers) from inside that directory, so file
names in issues are relative ("gateway.yaml"). Lines and columns are 1-based.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import string
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_gateway._errors import ConfigError, ConfigIssue
from mcp_gateway._gateway import Gateway, load_gateway

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-test-SECRET-123"

# Five lines; every test below that starts with HEAD counts its own lines from 6.
HEAD = """\
format: mcp-gateway/1
providers:
  p: {kind: mock}
models:
  m: {provider: p, model: mock-1}
"""


def write(root: Path, files: Mapping[str, str | bytes]) -> None:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text, encoding="utf-8")


def load(root: Path, files: Mapping[str, str | bytes], *, entry: str = "gateway.yaml",
         environ: Mapping[str, str] | None = None) -> Gateway:
    write(root, files)
    return load_gateway(root / entry, environ={} if environ is None else environ)


def issues(root: Path, files: Mapping[str, str | bytes], *, entry: str = "gateway.yaml",
           environ: Mapping[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load(root, files, entry=entry, environ=environ)
    return info.value.issues


def one(found: list[ConfigIssue]) -> ConfigIssue:
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def check(issue: ConfigIssue, file: str, line: int, column: int | None, path: str, *parts: str) -> None:
    """Assert an issue's location exactly and that its message contains every part."""
    where = (issue.file, issue.line, issue.column if column is not None else None, issue.path)
    assert where == (file, line, column, path), str(issue)
    for part in parts:
        assert part in issue.message, str(issue)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_head_is_five_lines() -> None:
    assert HEAD.count("\n") == 5


# -- 1. YAML syntax -------------------------------------------------------------------------------


def test_yaml_syntax_error_points_at_the_problem(tmp_path: Path) -> None:
    text = HEAD + (
        "server:\n"                 # 6
        "  name: demo\n"            # 7
        "    version: 1.0.0\n"      # 8  <- a key where a plain scalar continues
    )
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 8, 12, "", "YAML syntax error", "mapping values are not allowed")


def test_yaml_unclosed_bracket_names_where_it_opened(tmp_path: Path) -> None:
    text = HEAD + (
        "tools:\n"                  # 6
        "  - name: a\n"             # 7
        "    tags: [x, y\n"         # 8  <- '[' at column 11, never closed
        "    model: m\n"            # 9
    )
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    # PyYAML notices the problem at the ':' of line 9; the message says where the '[' opened
    check(issue, "gateway.yaml", 9, 10, "", "flow sequence (line 8, column 11)", "did not find expected ',' or ']'")


def test_yaml_unclosed_quote(tmp_path: Path) -> None:
    text = 'format: mcp-gateway/1\nserver:\n  name: "demo\n  version: 1.0.0\n'
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 5, 1, "", "quoted scalar (line 3, column 9)", "unexpected end of stream")


def test_yaml_tab_indentation(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": "format: mcp-gateway/1\ntools:\n\t- name: a\n"}))
    check(issue, "gateway.yaml", 3, 1, "", "YAML syntax error", "cannot start any token")


def test_yaml_syntax_error_in_included_file(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {
        "gateway.yaml": HEAD + "include: [more.yaml]\n",
        "more.yaml": "tools:\n  - name: a\n   description: x\n",
    }))
    check(issue, "more.yaml", 3, 4, "", "YAML syntax error")


def test_two_documents_in_one_file(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": "format: mcp-gateway/1\n---\nformat: mcp-gateway/1\n"}))
    check(issue, "gateway.yaml", 2, 1, "", "single document")


# -- 2. duplicate keys ----------------------------------------------------------------------------


def test_duplicate_key_mentions_both_positions(tmp_path: Path) -> None:
    text = HEAD + (
        "tools:\n"                          # 6
        "  - name: a\n"                     # 7  first 'name' at column 5
        "    description: d\n"              # 8
        "    model: m\n"                    # 9
        "    messages: [{role: user, content: hi}]\n"  # 10
        "    name: b\n"                     # 11 second 'name'
    )
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 11, 5, "tools[0].name", "duplicate key 'name'", "line 7, column 5")


def test_duplicate_key_at_top_level(tmp_path: Path) -> None:
    text = HEAD + "providers:\n  q: {kind: mock}\n"  # 'providers' again on line 6
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 6, 1, "providers", "duplicate key 'providers'", "line 2, column 1")


# -- 3. unknown fields ----------------------------------------------------------------------------


def test_unknown_fields_suggest_the_right_name(tmp_path: Path) -> None:
    text = (
        "format: mcp-gateway/1\n"                                   # 1
        "providers:\n"                                              # 2
        "  p: {kind: mock, base_ur: 'http://x'}\n"                  # 3  base_ur at column 19
        "models:\n"                                                 # 4
        "  m: {provider: p, model: mock-1, parms: {}}\n"            # 5  parms at column 35
        "tools:\n"                                                  # 6
        "  - name: a\n"                                             # 7
        "    description: d\n"                                      # 8
        "    descripton: typo\n"                                    # 9
        "    model: m\n"                                            # 10
        "    messages: [{role: user, content: hi}]\n"               # 11
    )
    found = issues(tmp_path, {"gateway.yaml": text})
    assert len(found) == 3, found
    check(found[0], "gateway.yaml", 3, 19, "providers.p.base_ur", "unknown field 'base_ur'",
          "did you mean 'base_url'?")
    check(found[1], "gateway.yaml", 5, 35, "models.m.parms", "unknown field 'parms'", "did you mean 'params'?")
    check(found[2], "gateway.yaml", 9, 5, "tools[0].descripton", "unknown field 'descripton'",
          "did you mean 'description'?")


def test_misspelt_required_field_also_reports_it_missing(tmp_path: Path) -> None:
    text = HEAD + "tools:\n  - name: a\n    descripton: d\n    model: m\n    messages: [{role: user, content: hi}]\n"
    found = issues(tmp_path, {"gateway.yaml": text})
    assert [(i.line, i.path) for i in found] == [(7, "tools[0]"), (8, "tools[0].descripton")]
    assert "missing required field 'description'" in found[0].message
    assert "did you mean 'description'?" in found[1].message


def test_unknown_field_without_close_match_lists_allowed(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": HEAD.replace("{kind: mock}", "{kind: mock, zzz: 1}")}))
    check(issue, "gateway.yaml", 3, 19, "providers.p.zzz", "unknown field 'zzz'",
          "(allowed: kind, base_url, api_key, headers, settings")


def test_capitalised_keys_are_not_mistaken_for_union_tags(tmp_path: Path) -> None:
    # Regression: names such as 'OpenAI' or 'Tools' were dropped from error paths (or crashed).
    text = (
        "format: mcp-gateway/1\n"           # 1
        "Tools: []\n"                       # 2
        "providers:\n"                      # 3
        "  OpenAI: {kind: mock, kindd: x}\n"  # 4
    )
    found = issues(tmp_path, {"gateway.yaml": text})
    assert len(found) == 2, found
    check(found[0], "gateway.yaml", 2, 1, "Tools", "unknown field 'Tools'", "did you mean 'tools'?")
    check(found[1], "gateway.yaml", 4, 24, "providers.OpenAI.kindd", "did you mean 'kind'?")


def test_unknown_field_inside_file_reference(tmp_path: Path) -> None:
    text = HEAD + "tools:\n  - name: a\n    description: d\n    model: m\n    messages:\n" \
        "      - role: user\n        content: {fil: x.j2}\n"  # line 12
    found = issues(tmp_path, {"gateway.yaml": text})
    # no "input should be a valid string" noise from the text member of `text | {file: ...}`
    assert [(i.line, i.path) for i in found] == [
        (12, "tools[0].messages[0].content"), (12, "tools[0].messages[0].content.fil")]
    assert "missing required field 'file'" in found[0].message
    assert "did you mean 'file'?" in found[1].message


# -- 4. missing and mistyped fields -----------------------------------------------------------------


def test_missing_and_mistyped_fields(tmp_path: Path) -> None:
    text = HEAD + (
        "tools:\n"                                        # 6
        "  - name: a\n"                                   # 7  no model
        "    description: d\n"                            # 8
        "    messages: [{role: user, content: hi}]\n"     # 9
        "  - name: b\n"                                   # 10
        "    description: d\n"                            # 11
        "    model: m\n"                                  # 12
        "    messages: {role: user, content: hi}\n"       # 13 a mapping, not a list
        "    prompt: 'no'\n"                              # 14 text, not a boolean
        "limits:\n"                                       # 15
        "  max_argument_chars: 0\n"                       # 16
    )
    found = issues(tmp_path, {"gateway.yaml": text})
    assert len(found) == 4, found
    check(found[0], "gateway.yaml", 7, 5, "tools[0]", "missing required field 'model'")
    check(found[1], "gateway.yaml", 13, 15, "tools[1].messages", "valid list")
    check(found[2], "gateway.yaml", 14, 13, "tools[1].prompt", "valid boolean")
    check(found[3], "gateway.yaml", 16, 23, "limits.max_argument_chars", "greater than or equal to 1")


def test_empty_value_where_text_is_required(tmp_path: Path) -> None:
    text = HEAD + "tools:\n  - name: a\n    description:\n    model: m\n    messages: [{role: user, content: hi}]\n"
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 8, 17, "tools[0].description", "expected text", "empty")


def test_empty_messages_list(tmp_path: Path) -> None:
    text = HEAD + "tools:\n  - name: a\n    description: d\n    model: m\n    messages: []\n"
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 10, 15, "tools[0].messages", "at least 1 item")


def test_invalid_role(tmp_path: Path) -> None:
    text = HEAD + "tools:\n  - name: a\n    description: d\n    model: m\n    messages: [{role: sytem, content: hi}]\n"
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 10, 23, "tools[0].messages[0].role", "'system', 'user' or 'assistant'")


# -- 5. tool names --------------------------------------------------------------------------------


def test_invalid_tool_name(tmp_path: Path) -> None:
    text = HEAD + 'tools:\n  - name: "bad name!"\n    description: d\n    model: m\n' \
        "    messages: [{role: user, content: hi}]\n"
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 7, 11, "tools[0].name", "should match pattern")


# -- 6. the same name twice --------------------------------------------------------------------------

TOOL_A = "tools:\n  - name: a\n    description: d\n    model: m\n    messages: [{role: user, content: hi}]\n"


def test_same_tool_in_root_and_included_file(tmp_path: Path) -> None:
    found = issues(tmp_path, {
        "gateway.yaml": HEAD + "include: [more.yaml]\n" + TOOL_A,   # tool on line 8
        "more.yaml": "# more tools\n" + TOOL_A,                        # tool on line 3
    })
    issue = one(found)
    check(issue, "more.yaml", 3, 5, "tools[0]", "tool 'a' version '1.0.0' is already defined at gateway.yaml:8:5")


def test_same_provider_in_two_files(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {
        "gateway.yaml": HEAD + "include: [more.yaml]\n" + TOOL_A,
        "more.yaml": "providers:\n  p: {kind: mock}\n",
    }))
    check(issue, "more.yaml", 2, 3, "providers.p", "provider 'p' is already defined at gateway.yaml:3:6")


def test_same_tool_twice_in_one_file(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": HEAD + TOOL_A + TOOL_A[len("tools:\n"):]}))
    check(issue, "gateway.yaml", 11, 5, "tools[1]", "already defined at gateway.yaml:7:5")


# -- 7. input schemas -----------------------------------------------------------------------------


def test_invalid_json_schema_points_into_the_schema(tmp_path: Path) -> None:
    text = HEAD + (
        "tools:\n"                                              # 6
        "  - name: a\n"                                         # 7
        "    description: d\n"                                  # 8
        "    model: m\n"                                        # 9
        "    input_schema:\n"                                   # 10
        "      type: object\n"                                  # 11
        "      properties:\n"                                   # 12
        "        n: {type: integer, minimum: zero}\n"           # 13 minimum at column 37
        "        s: {type: strin}\n"                            # 14 every error, not only the first
        "    messages: [{role: user, content: hi}]\n"           # 15
    )
    found = issues(tmp_path, {"gateway.yaml": text})
    assert len(found) == 2, found
    check(found[0], "gateway.yaml", 13, 37, "tools[0].input_schema.properties.n.minimum",
          "invalid JSON Schema", "'zero' is not of type 'number'")
    check(found[1], "gateway.yaml", 14, 19, "tools[0].input_schema.properties.s.type", "invalid JSON Schema")


def test_non_object_input_schema(tmp_path: Path) -> None:
    text = HEAD + "tools:\n  - name: a\n    description: d\n    model: m\n" \
        "    input_schema: {type: array, items: {type: string}}\n    messages: [{role: user, content: hi}]\n"
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 10, 19, "tools[0].input_schema", "must be an object schema")


def test_input_schema_that_is_not_a_mapping(tmp_path: Path) -> None:
    text = HEAD + "tools:\n  - name: a\n    description: d\n    model: m\n" \
        "    input_schema: [text]\n    messages: [{role: user, content: hi}]\n"
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 10, 19, "tools[0].input_schema", "valid dictionary")


def test_properties_that_are_not_a_mapping(tmp_path: Path) -> None:
    # Regression: `properties: 5` crashed with TypeError instead of being reported.
    text = HEAD + "tools:\n  - name: a\n    description: d\n    model: m\n" \
        "    input_schema: {type: object, properties: 5}\n    messages: [{role: user, content: hi}]\n"
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 10, 46, "tools[0].input_schema.properties", "invalid JSON Schema",
          "not of type 'object'")


# -- 8. defaults ------------------------------------------------------------------------------------


def test_default_that_fails_its_own_schema(tmp_path: Path) -> None:
    text = HEAD + (
        "tools:\n"                                              # 6
        "  - name: a\n"                                         # 7
        "    description: d\n"                                  # 8
        "    model: m\n"                                        # 9
        "    input_schema:\n"                                   # 10
        "      type: object\n"                                  # 11
        "      properties:\n"                                   # 12
        "        n:\n"                                          # 13
        "          type: integer\n"                             # 14
        "          minimum: 1\n"                                # 15
        "          default: 0\n"                                # 16
        "        mood: {type: string, enum: [calm, loud], default: angry}\n"  # 17
        "    messages: [{role: user, content: hi}]\n"           # 18
    )
    found = issues(tmp_path, {"gateway.yaml": text})
    assert len(found) == 2, found
    check(found[0], "gateway.yaml", 16, 20, "tools[0].input_schema.properties.n.default",
          "default fails its own schema", "less than the minimum of 1")
    check(found[1], "gateway.yaml", 17, 59, "tools[0].input_schema.properties.mood.default",
          "default fails its own schema", "'angry' is not one of")


# -- 9. template syntax ----------------------------------------------------------------------------


def _tool_with_messages(messages: str, properties: str = "{text: {type: string}}") -> str:
    return HEAD + (
        "tools:\n"                                              # 6
        "  - name: a\n"                                         # 7
        "    description: d\n"                                  # 8
        "    model: m\n"                                        # 9
        f"    input_schema: {{type: object, properties: {properties}}}\n"  # 10
        "    messages:\n"                                       # 11
    ) + messages                                                # from 12


def test_template_error_in_block_scalar_is_on_its_file_line(tmp_path: Path) -> None:
    text = _tool_with_messages(
        "      - role: user\n"                                  # 12
        "        content: |\n"                                  # 13
        "          first line {{ text }}\n"                     # 14
        "\n"                                                    # 15 (blank lines count)
        "          {% if text %}\n"                             # 16
        "          broken {{ text | }}\n"                       # 17 <- here
        "          {% endif %}\n"                               # 18
    )
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 17, 1, "tools[0].messages[0].content", "template syntax error")


def test_template_error_in_block_scalar_with_chomping_and_comment(tmp_path: Path) -> None:
    text = _tool_with_messages(
        "      - role: user\n"                                  # 12
        "        content: |-   # a comment\n"                   # 13
        "          one\n"                                       # 14
        "          two {% for x in %}\n"                        # 15 <- here
        "      - role: assistant\n"                             # 16
        "        content: ok\n"                                 # 17
    )
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 15, 1, "tools[0].messages[0].content", "template syntax error")


def test_template_error_in_file_reference(tmp_path: Path) -> None:
    text = _tool_with_messages("      - role: user\n        content: {file: prompts/x.j2}\n")
    issue = one(issues(tmp_path, {
        "gateway.yaml": text,
        "prompts/x.j2": "Hello.\n\n{{ text }}\n{% if text %}unclosed\n{{ text }\n",
    }))
    check(issue, "prompts/x.j2", 5, 1, "tools[0].messages[0].content", "template syntax error", "unexpected '}'")


def test_template_error_in_single_line_scalar(tmp_path: Path) -> None:
    text = _tool_with_messages("      - role: user\n        content: 'Say {{ text'\n")  # line 13, column 18
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 13, 18, "tools[0].messages[0].content", "template syntax error")


def test_template_error_on_a_later_line_of_a_quoted_scalar(tmp_path: Path) -> None:
    # Regression: "\n" escapes were counted as file lines, pointing past the end of the file.
    text = _tool_with_messages('      - role: user\n        content: "one\\ntwo\\n{{ text"\n')
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 13, 18, "tools[0].messages[0].content", "template syntax error",
          "(line 3 of this text)")


def test_template_error_in_folded_scalar(tmp_path: Path) -> None:
    # Regression: folded lines (>) were mapped one-to-one to file lines.
    text = _tool_with_messages(
        "      - role: user\n"                                  # 12
        "        content: >\n"                                  # 13
        "          one\n"                                       # 14
        "          two\n"                                       # 15
        "\n"                                                    # 16
        "          three {{ text\n"                             # 17
    )
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 13, 18, "tools[0].messages[0].content", "template syntax error",
          "(line 2 of this text)")


@pytest.mark.parametrize("line, message", [
    ("{{ text | shout }}", "o filter named 'shout'"),
    ("{% if text %}{{ text | shout }}{% endif %}", "no filter named 'shout'"),
    ("{% if text is shouty %}!{% endif %}", "no test named 'shouty'"),
])
def test_unknown_filter_or_test_is_a_template_error(tmp_path: Path, line: str, message: str) -> None:
    # Regression: an unknown filter crashed the build (Jinja finds it only when compiling), and
    # inside {% if %} unknown filters and tests surfaced only when a call rendered the template.
    text = _tool_with_messages(f"      - role: user\n        content: |\n          ok\n          {line}\n")  # line 15
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 15, 1, "tools[0].messages[0].content", "template syntax error", message)


def test_template_error_in_partial(tmp_path: Path) -> None:
    text = HEAD + (
        "partials:\n"                                           # 6
        "  style: |\n"                                          # 7
        "    Be brief.\n"                                       # 8
        "    {% if %}\n"                                        # 9
    ) + TOOL_A
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 9, 1, "partials.style", "template syntax error")


def test_extends_is_refused(tmp_path: Path) -> None:
    text = _tool_with_messages("      - role: user\n        content: '{% extends \"base\" %}'\n")
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 13, 18, "tools[0].messages[0].content", "only {% include %}")


# -- 10. undeclared variables ------------------------------------------------------------------------


def test_undeclared_variable_is_reported_on_its_line(tmp_path: Path) -> None:
    text = _tool_with_messages(
        "      - role: user\n"                                  # 12
        "        content: |\n"                                  # 13
        "          Text: {{ text }}\n"                          # 14
        "          Tone: {{ tone }}\n"                          # 15 <- not declared
    )
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 15, 1, "tools[0].messages[0].content",
          "template uses 'tone'", "not a property in input_schema", "(declared: text)")


def test_undeclared_variable_in_file_and_in_partial(tmp_path: Path) -> None:
    text = HEAD + (
        "partials:\n"                                           # 6
        "  sign: 'Regards, {{ author }}'\n"                     # 7
        "tools:\n"                                              # 8
        "  - name: a\n"                                         # 9
        "    description: d\n"                                  # 10
        "    model: m\n"                                        # 11
        "    messages:\n"                                       # 12
        "      - role: user\n"                                  # 13
        "        content: {file: a.j2}\n"                       # 14
        "      - role: user\n"                                  # 15
        "        content: |\n"                                  # 16
        "          Hi.\n"                                       # 17
        "          {% include 'sign' %}\n"                      # 18 <- the partial reads 'author'
    )
    found = issues(tmp_path, {"gateway.yaml": text, "a.j2": "Hello\n{% for x in items %}{{ x }}{% endfor %}\n"})
    assert len(found) == 2, found
    check(found[0], "a.j2", 2, 1, "tools[0].messages[0].content", "template uses 'items'", "(declared: none)")
    check(found[1], "gateway.yaml", 18, 1, "tools[0].messages[1].content", "template uses 'author'")


def test_prompt_template_uses_undeclared_argument(tmp_path: Path) -> None:
    text = HEAD + (
        "prompts:\n"                                            # 6
        "  - name: review\n"                                    # 7
        "    arguments: [{name: draft}]\n"                      # 8
        "    messages:\n"                                       # 9
        "      - role: user\n"                                  # 10
        "        content: 'Review {{ draft }} for {{ focus }}'\n"  # 11
    )
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 11, 18, "prompts[0].messages[0].content",
          "template uses 'focus'", "not a declared argument", "(declared: draft)")


# -- 11. partials and include cycles -----------------------------------------------------------------


def test_unknown_partial(tmp_path: Path) -> None:
    text = HEAD + "partials:\n  style: Be brief.\n" + _tool_with_messages(
        "      - role: user\n        content: |\n          Hi\n          {% include \"nope\" %}\n"
    )[len(HEAD):]  # two more lines at the top: the include sits on line 17
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 17, 1, "tools[0].messages[0].content", "unknown partial 'nope'", "(partials: style)")


def test_include_cycle_among_config_files(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {
        "gateway.yaml": HEAD + "include: [a.yaml]\n" + TOOL_A,
        "a.yaml": "include:\n  - b.yaml\n",
        "b.yaml": "# back to a\ninclude: [a.yaml]\n",
    }))
    check(issue, "b.yaml", 2, 11, "include[0]", "include cycle: gateway.yaml -> a.yaml -> b.yaml -> a.yaml")


def test_include_of_the_root_file(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {
        "gateway.yaml": HEAD + "include: [b.yaml]\n" + TOOL_A,
        "b.yaml": "include: [gateway.yaml]\n",
    }))
    check(issue, "b.yaml", 1, 11, "include[0]", "include cycle: gateway.yaml -> b.yaml -> gateway.yaml")


def test_missing_included_file_and_empty_glob(tmp_path: Path) -> None:
    found = issues(tmp_path, {"gateway.yaml": HEAD + "include: [nope.yaml, 'tools/*.yaml']\n" + TOOL_A})
    assert len(found) == 2, found
    check(found[0], "gateway.yaml", 6, 11, "include[0]", "included file not found: nope.yaml")
    check(found[1], "gateway.yaml", 6, 22, "include[1]", "'tools/*.yaml' matches no files")


def test_diamond_include_is_not_a_cycle(tmp_path: Path) -> None:
    gateway = load(tmp_path, {
        "gateway.yaml": HEAD + "include: [a.yaml, b.yaml]\n" + TOOL_A,
        "a.yaml": "include: [c.yaml]\n",
        "b.yaml": "include: [c.yaml]\n",
        "c.yaml": "tools:\n  - {name: c, description: d, model: m, messages: [{role: user, content: hi}]}\n",
    })
    assert sorted(t.name for t in gateway.catalog.tools.all()) == ["a", "c"]


# -- 12. references outside the config root -------------------------------------------------------


def test_references_outside_the_config_root(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("tools: []\n")
    (tmp_path / "outside.txt").write_text("secret notes\n")
    text = HEAD + (
        "include: [../x.yaml]\n"                                # 6
        "tools:\n"                                              # 7
        "  - name: a\n"                                         # 8
        "    description: d\n"                                  # 9
        "    model: m\n"                                        # 10
        "    messages:\n"                                       # 11
        "      - role: user\n"                                  # 12
        "        content: {file: ../outside.txt}\n"             # 13
    )
    found = issues(tmp_path, {"conf/gateway.yaml": text}, entry="conf/gateway.yaml")
    assert len(found) == 2, found
    check(found[0], "conf/gateway.yaml", 6, 11, "include[0]", "include", "x.yaml", "outside the config root")
    check(found[1], "conf/gateway.yaml", 13, 18, "tools[0].messages[0].content", "file", "outside.txt",
          "outside the config root")


def test_absolute_and_nul_byte_paths(tmp_path: Path) -> None:
    # Regression: a NUL byte in a path crashed with ValueError.
    text = HEAD + 'include: [/etc/hostname, "a\\0b.yaml"]\n' + TOOL_A
    found = issues(tmp_path, {"gateway.yaml": text})
    assert len(found) == 2, found
    check(found[0], "gateway.yaml", 6, 11, "include[0]", "outside the config root")
    check(found[1], "gateway.yaml", 6, 26, "include[1]", "invalid include path", "null byte")


def test_file_reference_not_found(tmp_path: Path) -> None:
    text = _tool_with_messages("      - role: user\n        content: {file: nope.j2}\n")
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 13, 18, "tools[0].messages[0].content", "file not found: nope.j2")


def test_overlong_file_name(tmp_path: Path) -> None:
    # Regression: ENAMETOOLONG from is_file() crashed the loader.
    text = _tool_with_messages(f"      - role: user\n        content: {{file: {'n' * 300}.j2}}\n")
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 13, 18, "tools[0].messages[0].content", "file not found")


# -- 13. references between sections ------------------------------------------------------------------


def test_unknown_provider_and_model(tmp_path: Path) -> None:
    text = (
        "format: mcp-gateway/1\n"                               # 1
        "providers:\n"                                          # 2
        "  local: {kind: mock}\n"                               # 3
        "models:\n"                                             # 4
        "  main: {provider: locale, model: mock-1}\n"           # 5 provider value at column 20
        "  other: {provider: zzz, model: mock-1}\n"             # 6
        "tools:\n"                                              # 7
        "  - name: a\n"                                         # 8
        "    description: d\n"                                  # 9
        "    model: mian\n"                                     # 10
        "    messages: [{role: user, content: hi}]\n"           # 11
        "  - name: b\n"                                         # 12
        "    description: d\n"                                  # 13
        "    model: qqqq\n"                                     # 14
        "    messages: [{role: user, content: hi}]\n"           # 15
    )
    found = issues(tmp_path, {"gateway.yaml": text})
    assert len(found) == 4, found
    check(found[0], "gateway.yaml", 5, 20, "models.main.provider", "unknown provider 'locale'",
          "did you mean 'local'?")
    check(found[1], "gateway.yaml", 6, 21, "models.other.provider", "unknown provider 'zzz'", "(defined: local)")
    check(found[2], "gateway.yaml", 10, 12, "tools[0].model", "unknown model 'mian'", "did you mean 'main'?")
    check(found[3], "gateway.yaml", 14, 12, "tools[1].model", "unknown model 'qqqq'", "(defined: main, other)")


def test_unknown_provider_kind(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": HEAD.replace("kind: mock", "kind: mokc") + TOOL_A}))
    check(issue, "gateway.yaml", 3, 13, "providers.p.kind", "unknown provider kind 'mokc'", "(available: ", "mock")


def test_bad_provider_settings(tmp_path: Path) -> None:
    text = HEAD.replace("{kind: mock}", "{kind: mock, settings: {latency: 5}}") + TOOL_A
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 3, 29, "providers.p.settings", "provider 'p'", "unknown setting(s) latency")


# -- 14. environment references and secrets -----------------------------------------------------------

ENV_CONFIG = (
    "format: mcp-gateway/1\n"                                                 # 1
    "providers:\n"                                                            # 2
    "  live:\n"                                                               # 3
    "    kind: mock\n"                                                        # 4
    "    api_key: ${env:GW_TEST_KEY}\n"                                       # 5
    "  tuning:\n"                                                             # 6
    "    kind: mock\n"                                                        # 7
    "    api_key: ${env:GW_DRAFT_KEY}\n"                                      # 8
    "models:\n"                                                               # 9
    "  main: {provider: live, model: mock-1}\n"                               # 10
    "  lab: {provider: tuning, model: mock-1}\n"                              # 11
    "tools:\n"                                                                # 12
    "  - {name: a, description: d, model: main, messages: [{role: user, content: hi}]}\n"   # 13
    "  - {name: b, description: d, model: lab, status: draft, messages: [{role: user, content: hi}]}\n"
)


def test_unset_environment_variable_names_variable_and_provider(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": ENV_CONFIG}))
    check(issue, "gateway.yaml", 5, 14, "providers.live.api_key", "GW_TEST_KEY is not set", "provider 'live'")


def test_set_environment_variable_loads(tmp_path: Path) -> None:
    # GW_DRAFT_KEY stays unset: its provider serves only a draft tool, which is not served.
    gateway = load(tmp_path, {"gateway.yaml": ENV_CONFIG}, environ={"GW_TEST_KEY": SECRET})
    assert [t.name for t in gateway.catalog.tools.all() if t.config.status == "published"] == ["a"]


def test_unset_variable_in_a_header(tmp_path: Path) -> None:
    text = HEAD.replace("{kind: mock}", "{kind: mock, headers: {X-Key: 'Bearer ${env:GW_HDR}'}}") + TOOL_A
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 3, 36, "providers.p.headers.X-Key", "GW_HDR is not set", "provider 'p'")


def test_inline_api_key_is_an_error(tmp_path: Path) -> None:
    text = ENV_CONFIG.replace("${env:GW_TEST_KEY}", "sk-live-inline-abc")
    issue = one(issues(tmp_path, {"gateway.yaml": text}, environ={"GW_TEST_KEY": SECRET}))
    check(issue, "gateway.yaml", 5, 14, "providers.live.api_key", "environment reference", "never inline")


def test_partial_environment_reference_in_api_key_is_an_error(tmp_path: Path) -> None:
    text = ENV_CONFIG.replace("${env:GW_TEST_KEY}", "'Bearer ${env:GW_TEST_KEY}'")
    issue = one(issues(tmp_path, {"gateway.yaml": text}, environ={"GW_TEST_KEY": SECRET}))
    check(issue, "gateway.yaml", 5, 14, "providers.live.api_key", "never inline")


SECRET_CONFIG = ENV_CONFIG.replace(
    "    kind: mock\n    api_key: ${env:GW_TEST_KEY}\n",
    # the mock provider quotes a bad setting in its error: it must come out masked
    "    kind: mock\n    api_key: ${env:GW_TEST_KEY}\n    settings: {latency_ms: '${env:GW_TEST_KEY}'}\n",
).replace("content: hi}]}\n  - {name: b", "content: '{{ oops'}]}\n  - {name: b")


def test_secret_value_never_appears_in_errors(tmp_path: Path) -> None:
    # Regression: a provider factory's error quoted the resolved ${env:...} value.
    found = issues(tmp_path, {"gateway.yaml": SECRET_CONFIG}, environ={"GW_TEST_KEY": SECRET})
    assert len(found) == 2, found
    check(found[0], "gateway.yaml", 6, 15, "providers.live.settings", "provider 'live'", "***")
    check(found[1], "gateway.yaml", 14, 77, "tools[0].messages[0].content", "template syntax error")
    for issue in found:
        assert SECRET not in str(issue)


# -- 15. output schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize("schema, message", [
    ("{type: string}", "must be an object schema"),
    ("{}", "must be an object schema"),  # regression: an empty schema was silently ignored
    ("{type: object, properties: {n: {type: nope}}}", "invalid JSON Schema"),
    ("[x]", "valid dictionary"),
])
def test_output_schema_must_be_an_object_schema(tmp_path: Path, schema: str, message: str) -> None:
    text = HEAD + TOOL_A + f"    output_schema: {schema}\n"  # line 11
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    assert (issue.file, issue.line) == ("gateway.yaml", 11)
    assert issue.path.startswith("tools[0].output_schema") and message in issue.message, issue


# -- 16. values YAML does not read as text ------------------------------------------------------------


def test_value_read_as_boolean_or_number_says_to_quote_it(tmp_path: Path) -> None:
    text = HEAD + (
        "tools:\n"                                              # 6
        "  - name: a\n"                                         # 7
        "    description: true\n"                               # 8
        "    version: 1.10\n"                                   # 9
        "    title: 2024-05-01\n"                               # 10
        "    model: m\n"                                        # 11
        "    messages: [{role: user, content: 42}]\n"           # 12
    )
    found = issues(tmp_path, {"gateway.yaml": text})
    assert len(found) == 4, found
    check(found[0], "gateway.yaml", 8, 18, "tools[0].description", "YAML read true as a boolean", 'quotes: "true"')
    check(found[1], "gateway.yaml", 9, 14, "tools[0].version", "YAML read 1.10 as a number", 'quotes: "1.10"')
    check(found[2], "gateway.yaml", 10, 12, "tools[0].title", "as a date", 'quotes: "2024-05-01"')
    check(found[3], "gateway.yaml", 12, 38, "tools[0].messages[0].content", "YAML read 42 as a number", "quotes")


def test_yaml_1_1_booleans_stay_text(tmp_path: Path) -> None:
    text = HEAD + TOOL_A.replace("description: d", "description: no") + "    title: yes\n    tags: [on, off]\n"
    tool = load(tmp_path, {"gateway.yaml": text}).catalog.tools.get("a")
    assert (tool.config.title, tool.config.description, tool.config.tags) == ("yes", "no", ["on", "off"])


def test_server_version_read_as_number(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": HEAD + "server:\n  version: 1.0\n" + TOOL_A}))
    check(issue, "gateway.yaml", 7, 12, "server.version", "YAML read 1.0 as a number", 'quotes: "1.0"')


# -- 17. every error at once --------------------------------------------------------------------------


def test_four_errors_in_one_file_are_four_issues(tmp_path: Path) -> None:
    text = HEAD + (
        "tools:\n"                                              # 6
        "  - name: bad name\n"                                  # 7  1: name pattern
        "    description: d\n"                                  # 8
        "    model: m\n"                                        # 9
        "    version: 1.0\n"                                    # 10 2: number, not text
        "    messages: [{role: sytem, content: hi}]\n"          # 11 3: role
        "  - name: b\n"                                         # 12
        "    description: d\n"                                  # 13
        "    model: m\n"                                        # 14
        "    colour: red\n"                                     # 15 4: unknown field
        "    messages: [{role: user, content: hi}]\n"           # 16
    )
    found = issues(tmp_path, {"gateway.yaml": text})
    assert [(i.line, i.path) for i in found] == [
        (7, "tools[0].name"), (10, "tools[0].version"), (11, "tools[0].messages[0].role"), (15, "tools[1].colour"),
    ], found


def test_errors_from_several_files_together(tmp_path: Path) -> None:
    found = issues(tmp_path, {
        "gateway.yaml": HEAD + "include: [tools/*.yaml]\n" + TOOL_A.replace("model: m", "model: m\n    colour: x"),
        "tools/one.yaml": "tools:\n  - {name: b, description: d, model: m, messages: [{role: user, content: hi}],"
                          " status: live}\n",
        "tools/two.yaml": "tools:\n  - {name: c, description: d, model: m, messages: [{role: user, content: hi}]\n",
    })
    assert [(i.file, i.line, i.path) for i in found] == [
        ("gateway.yaml", 11, "tools[0].colour"),
        ("tools/one.yaml", 2, "tools[0].status"),
        ("tools/two.yaml", 3, ""),
    ], found
    assert "YAML syntax error" in found[2].message


def test_template_and_schema_errors_of_several_tools_together(tmp_path: Path) -> None:
    text = HEAD + (
        "tools:\n"                                                                  # 6
        "  - {name: a, description: d, model: m, messages: [{role: user, content: '{{ x'}]}\n"   # 7
        "  - {name: b, description: d, model: m, input_schema: {type: array},\n"   # 8
        "     messages: [{role: user, content: '{{ y }}'}]}\n"                      # 9
    )
    found = issues(tmp_path, {"gateway.yaml": text})
    assert [(i.line, i.path) for i in found] == [
        (7, "tools[0].messages[0].content"), (8, "tools[1].input_schema"), (9, "tools[1].messages[0].content")]


# -- 18. the command line ------------------------------------------------------------------------------


def _cli_parallel(commands: list[list[str]], cwd: Path,
                  env: Mapping[str, str] | None = None) -> list[subprocess.CompletedProcess[str]]:
    """Run `python -m mcp_gateway ARGS` for each command at once; stdin is empty."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GW_")}
    environ.update(env or {})
    procs = [subprocess.Popen([sys.executable, "-m", "mcp_gateway", *args], cwd=cwd, env=environ, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for args in commands]
    done = []
    for args, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate("", timeout=60)
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def test_cli_validate_and_serve_exit_2_with_located_errors_and_no_secret(tmp_path: Path) -> None:
    # SECRET_CONFIG has two errors, one of which made the provider factory quote the secret's value.
    write(tmp_path, {"gateway.yaml": SECRET_CONFIG})
    text, as_json, serve = _cli_parallel([
        ["validate", "gateway.yaml"], ["validate", "gateway.yaml", "--json"], ["serve", "gateway.yaml"],
    ], tmp_path, env={"GW_TEST_KEY": SECRET})
    for proc in (text, as_json, serve):
        assert proc.returncode == 2, proc.stderr
        assert SECRET not in proc.stdout + proc.stderr

    assert text.stdout == ""
    assert text.stderr.startswith("2 errors in the configuration\n")
    assert "  gateway.yaml:6:15: providers.live.settings: provider 'live': " in text.stderr
    assert "  gateway.yaml:14:77: tools[0].messages[0].content: template syntax error: " in text.stderr

    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert [(e["file"], e["line"], e["column"], e["path"]) for e in report["errors"]] == [
        ("gateway.yaml", 6, 15, "providers.live.settings"), ("gateway.yaml", 14, 77, "tools[0].messages[0].content")]

    assert serve.stdout == ""  # stdout belongs to the protocol: nothing on it
    assert "gateway.yaml:6:15: providers.live.settings" in serve.stderr
    assert "gateway.yaml:14:77: tools[0].messages[0].content" in serve.stderr


# -- 19. MCP prompts --------------------------------------------------------------------------------


def test_prompt_with_system_message(tmp_path: Path) -> None:
    text = HEAD + TOOL_A + (
        "prompts:\n"                                            # 11
        "  - name: review\n"                                    # 12
        "    messages:\n"                                       # 13
        "      - role: user\n"                                  # 14
        "        content: Review this.\n"                       # 15
        "      - role: system\n"                                # 16 role value at column 15
        "        content: Be kind.\n"                           # 17
    )
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 16, 15, "prompts[0].messages[1].role", "no system role")


def test_tool_named_like_a_prompt(tmp_path: Path) -> None:
    text = HEAD + TOOL_A + "prompts:\n  - name: a\n    messages: [{role: user, content: hi}]\n"  # prompt on line 12
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 7, 11, "tools[0].name", "tool 'a' is also offered as a prompt",
          "defined at gateway.yaml:12:5", "prompt: false")


def test_tool_named_like_a_prompt_is_fine_without_its_prompt(tmp_path: Path) -> None:
    text = HEAD + TOOL_A + "    prompt: false\nprompts:\n  - name: a\n    messages: [{role: user, content: hi}]\n"
    gateway = load(tmp_path, {"gateway.yaml": text})
    assert [p.name for p in gateway.catalog.prompts.all()] == ["a"]


def test_duplicate_prompt_names(tmp_path: Path) -> None:
    text = HEAD + "prompts:\n" + "  - name: p\n    messages: [{role: user, content: hi}]\n" * 2
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 9, 5, "prompts[1]", "prompt 'p' is already defined at gateway.yaml:7:5")


# -- 20. file shapes and the format line -----------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"], ids=["empty", "comment", "marker"])
def test_empty_root_file(tmp_path: Path, text: str) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 1, 1, "", "missing 'format: mcp-gateway/1'")


@pytest.mark.parametrize("text, line", [("- a\n- b\n", 1), ("# x\nhello\n", 2), ("\n[format]\n", 2)])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, line: int) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", line, 1, "", "top level must be a mapping")


def test_included_file_whose_top_level_is_a_list(tmp_path: Path) -> None:
    found = issues(tmp_path, {
        "gateway.yaml": HEAD + "include: [empty.yaml, list.yaml]\n" + TOOL_A,
        "empty.yaml": "",  # an empty included file is harmless
        "list.yaml": "- name: x\n",
    })
    check(one(found), "list.yaml", 1, 1, "", "top level must be a mapping")


def test_missing_format(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": HEAD[len("format: mcp-gateway/1\n"):] + TOOL_A}))
    check(issue, "gateway.yaml", 1, 1, "", "missing 'format: mcp-gateway/1' at the top of the root config")


@pytest.mark.parametrize("value", ["mcp-gateway/2", "1", "'mcp-gateway/1 '"])
def test_wrong_format(tmp_path: Path, value: str) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": HEAD.replace("mcp-gateway/1", value) + TOOL_A}))
    check(issue, "gateway.yaml", 1, 9, "format", "'mcp-gateway/1'")


def test_server_section_only_in_root(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {
        "gateway.yaml": HEAD + "include: [more.yaml]\n" + TOOL_A,
        "more.yaml": "# tools only\nserver: {name: x}\n",
    }))
    check(issue, "more.yaml", 2, 9, "server", "only allowed in the root config")


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    issue = one(issues(tmp_path, {"gateway.yaml": b"format: mcp-gateway/1\nserver: {name: caf\xe9}\n"}))
    check(issue, "gateway.yaml", 1, 1, "", "not UTF-8")


def test_missing_root_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_gateway(tmp_path / "nope.yaml", environ={})
    check(one(info.value.issues), "nope.yaml", 1, 1, "", "config file not found")


# -- YAML features the format refuses -----------------------------------------------------------------


def test_merge_keys_are_refused(tmp_path: Path) -> None:
    text = HEAD + "tools:\n  - &t {name: a, description: d, model: m, messages: [{role: user, content: hi}]}\n" \
        "  - <<: *t\n    name: b\n"
    found = issues(tmp_path, {"gateway.yaml": text})
    assert ("gateway.yaml", 8, 5, "tools[1]") in [(i.file, i.line, i.column, i.path) for i in found]
    assert any("merge keys" in i.message for i in found)


def test_recursive_alias(tmp_path: Path) -> None:
    # Regression: an anchor used inside itself recursed until RecursionError.
    text = HEAD + TOOL_A + "    tags: &x [*x]\n"  # line 11; an alias is its anchored node, at column 11
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    check(issue, "gateway.yaml", 11, 11, "tools[0].tags[0]", "recursive YAML alias")


def test_deep_nesting(tmp_path: Path) -> None:
    # Regression: a few hundred nested levels exhausted the Python stack.
    text = HEAD + TOOL_A + "    params: {x: " + "[" * 400 + "]" * 400 + "}\n"
    issue = one(issues(tmp_path, {"gateway.yaml": text}))
    assert (issue.file, issue.line) == ("gateway.yaml", 11) and "nested more than" in issue.message


def test_bad_explicitly_tagged_value(tmp_path: Path) -> None:
    # Regression: `!!int abc` crashed with ValueError.
    issue = one(issues(tmp_path, {"gateway.yaml": HEAD + "limits: {max_argument_chars: !!int abc}\n" + TOOL_A}))
    check(issue, "gateway.yaml", 6, 30, "limits.max_argument_chars", "invalid value", "!!int", "'abc'")


def test_python_tags_are_refused(tmp_path: Path) -> None:
    # Regression: a tag on a list or mapping was silently dropped.
    text = HEAD + "server: {name: !!python/object/apply:os.system [echo hacked], title: !!python/name:os.system x}\n"
    found = issues(tmp_path, {"gateway.yaml": text + TOOL_A})
    assert len(found) == 2, found
    check(found[0], "gateway.yaml", 6, 16, "server.name", "unsupported YAML tag '!!python/object/apply:os.system'")
    check(found[1], "gateway.yaml", 6, 70, "server.title", "invalid value", "could not determine a constructor")


# -- 21. the examples -------------------------------------------------------------------------------


def test_examples_load() -> None:
    gateway = load_gateway(ROOT / "examples" / "gateway.yaml", environ={})
    assert len(gateway.catalog.tools.all()) >= 5
    assert len(gateway.files) == 2


# -- fuzzing ------------------------------------------------------------------------------------------

_FIELDS = ["format", "server", "limits", "include", "providers", "models", "partials", "tools", "prompts",
           "resources", "name", "description", "model", "messages", "role", "content", "file", "input_schema",
           "output_schema", "type", "properties", "default", "kind", "api_key", "provider", "status", "uri",
           "uri_template", "text", "arguments", "settings", "params", "version", "prompt"]
_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
            | st.sampled_from(["mcp-gateway/1", "user", "system", "object", "mock", "m", "p", "a", "{{ x }}",
                               "{% include 'p' %}", "${env:X}", "../x", "*.yaml", "published", "draft", "x://{a}"])
            | st.text(max_size=20))
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_FIELDS) | st.text(max_size=8),
                                                                inner, max_size=5),
    max_leaves=30,
)
_configs = st.fixed_dictionaries(
    {"format": st.sampled_from(["mcp-gateway/1", "mcp-gateway/1", "x"])},
    optional={key: _values for key in ["server", "limits", "include", "providers", "models", "partials", "tools",
                                       "prompts", "resources"]},
)
_yaml_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200) | st.text(
    alphabet=string.ascii_lowercase[:6] + " :-\n[]{}'\"|>&*!#,?\t0123456789.$", max_size=200)
_FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _load_or_config_error(path: Path) -> None:
    try:
        load_gateway(path, environ={})
    except ConfigError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.line >= 1 and issue.column >= 1 and issue.message


@_FUZZ
@given(text=_yaml_text)
def test_fuzz_random_text_raises_only_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz-text.yaml"
    path.write_text(text, encoding="utf-8")
    _load_or_config_error(path)


@_FUZZ
@given(config=_configs)
def test_fuzz_random_structures_raise_only_config_error(tmp_path: Path, config: dict[str, object]) -> None:
    path = tmp_path / "fuzz-structure.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    _load_or_config_error(path)


_EXAMPLE = yaml.safe_load((ROOT / "examples" / "gateway.yaml").read_text(encoding="utf-8"))


def _mutate(node: object, data: st.DataObject) -> None:
    """Replace, drop or add one value somewhere inside `node` (a dict or list)."""
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            return
        key = data.draw(st.sampled_from(keys))
        child = node[key]  # type: ignore[index]
        if isinstance(child, (dict, list)) and child and data.draw(st.booleans()):
            node = child
            continue
        action = data.draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            node[key] = data.draw(_values)  # type: ignore[index]
        elif action == "drop":
            del node[key]  # type: ignore[attr-defined]
        elif isinstance(node, dict):
            node[data.draw(st.sampled_from(_FIELDS))] = data.draw(_values)
        else:
            node.append(data.draw(_values))  # type: ignore[union-attr]
        return


@_FUZZ
@given(data=st.data())
def test_fuzz_mutated_example_raises_only_config_error(tmp_path: Path, data: st.DataObject) -> None:
    if not (tmp_path / "tools").exists():
        shutil.copytree(ROOT / "examples", tmp_path, dirs_exist_ok=True)
    config = copy.deepcopy(_EXAMPLE)
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(config, data)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _load_or_config_error(path)
