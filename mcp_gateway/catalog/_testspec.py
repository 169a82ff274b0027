"""Tests written inside tool files: checked at load time, compiled for the runner.

Loading checks what can be checked without calling a model, so that a broken test is a config
error located like any other (file:line:col): arguments that fail the tool's input schema, a
regular expression or JSONPath that does not compile, an invalid JSON Schema, structured checks
on a tool that has no output schema, and a rubric with no judge route configured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext import parse as parse_json_path
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .._errors import ConfigIssue
from ..config import ToolTest
from ._schema import compile_validator, violations

if TYPE_CHECKING:
    from ..config import Origin
    from ._tools import PromptTool

__all__ = ["CompiledTest", "check_tests", "compile_test"]


@dataclass(frozen=True, slots=True)
class CompiledTest:
    """A test with its regular expression, schema and JSONPath expressions compiled."""

    name: str
    spec: ToolTest
    regex: re.Pattern[str] | None
    schema: Draft202012Validator | None
    json_paths: tuple[tuple[str, Any, Any], ...]  # (expression, compiled, expected value)


def compile_test(index: int, spec: ToolTest) -> CompiledTest:
    """Compile one test; raises ValueError (already reported at load time by `check_tests`)."""
    expect = spec.expect
    regex = re.compile(expect.regex) if expect.regex is not None else None
    schema = None
    if expect.schema_ is not None:
        Draft202012Validator.check_schema(expect.schema_)
        schema = compile_validator(expect.schema_)
    paths = tuple((expr, parse_json_path(expr), value) for expr, value in (expect.json_path or {}).items())
    return CompiledTest(spec.name or f"test {index + 1}", spec, regex, schema, paths)


def check_tests(tool: PromptTool, origin: Origin, *, has_judge: bool) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    for i, spec in enumerate(tool.config.tests):
        at = ("tests", i)
        for violation in violations(tool.input_validator, spec.args):
            issues.append(origin.issue((*at, "args"), f"args fail the tool's input_schema at {violation.path}: "
                                                      f"{violation.message}"))
        expect = spec.expect
        if expect.regex is not None:
            try:
                re.compile(expect.regex)
            except re.error as exc:
                issues.append(origin.issue((*at, "expect", "regex"), f"invalid regular expression: {exc}"))
        if expect.schema_ is not None:
            try:
                Draft202012Validator.check_schema(expect.schema_)
            except SchemaError as exc:
                issues.append(origin.issue((*at, "expect", "schema"), f"invalid JSON Schema: {exc.message}"))
        for expr in expect.json_path or {}:
            try:
                parse_json_path(expr)
            except (JSONPathError, ValueError) as exc:
                issues.append(origin.issue((*at, "expect", "json_path", expr), f"invalid JSONPath: {exc}",
                                           prefer_key=True))
        if (expect.schema_ is not None or expect.json_path) and tool.config.output_schema is None:
            key = "schema" if expect.schema_ is not None else "json_path"
            issues.append(origin.issue((*at, "expect", key), (
                "this tool has no output_schema, so there is no structured answer to check; "
                "use equals, contains or regex on the text")))
        if expect.rubric is not None and not has_judge:
            issues.append(origin.issue((*at, "expect", "rubric"), (
                "a rubric needs a judge: add `testing: {judge: <model alias>}` to the root config")))
    return issues
