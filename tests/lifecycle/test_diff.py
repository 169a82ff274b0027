"""Compatibility gates: schema changes classified, `mcp-gateway diff` on files and against a Git ref."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mcp_gateway.lifecycle._compat import compare_schemas
from tests.conftest import ROOT

OBJ = {"type": "object", "properties": {"text": {"type": "string"}, "n": {"type": "integer", "maximum": 10}},
       "required": ["text"]}


def _with(**changes):
    schema = {**OBJ, "properties": {k: dict(v) for k, v in OBJ["properties"].items()}}
    for key, value in changes.items():
        schema[key] = value
    return schema


@pytest.mark.parametrize(("new", "expected"), [
    (_with(properties={"text": {"type": "string"}}), [("input.properties.n", True)]),
    (_with(required=["text", "n"]), [("input", True)]),
    (_with(properties={**OBJ["properties"], "mode": {"type": "string"}}, required=["text", "mode"]),
     [("input.properties.mode", True)]),
    (_with(properties={**OBJ["properties"], "mode": {"type": "string"}}), [("input.properties.mode", False)]),
    (_with(properties={"text": {"type": "string", "enum": ["a"]}, "n": OBJ["properties"]["n"]}),
     [("input.properties.text", True)]),
    (_with(properties={"text": {"type": ["string", "null"]}, "n": OBJ["properties"]["n"]}),
     [("input.properties.text", False)]),
    (_with(properties={"text": {"type": "string"}, "n": {"type": "integer", "maximum": 5}}),
     [("input.properties.n", True)]),
    (_with(properties={"text": {"type": "string"}, "n": {"type": "number", "maximum": 20}}),
     [("input.properties.n", False), ("input.properties.n", False)]),
    (_with(required=[]), [("input", False)]),
    (_with(additionalProperties=False), [("input", True)]),
])
def test_input_changes_break_when_an_old_call_could_be_refused(new, expected):
    found = [(c.path, c.breaking) for c in compare_schemas(OBJ, new, direction="input", path="input")]
    assert found == expected


def test_output_changes_break_when_an_old_reader_could_be_surprised():
    old = {"type": "object", "properties": {"level": {"type": "string", "enum": ["low", "high"]},
                                            "score": {"type": "number"}}, "required": ["level", "score"]}

    def classify(new):
        return [(c.path, c.breaking) for c in compare_schemas(old, new, direction="output", path="out")]

    assert classify({**old, "required": ["level"]}) == [("out", True)]  # score may now be missing
    assert classify({**old, "properties": {**old["properties"], "level": {"type": "string",
                                                                          "enum": ["low", "high", "mid"]}}}) == \
        [("out.properties.level", True)]  # a value readers do not expect
    assert classify({**old, "properties": {**old["properties"], "level": {"type": "string", "enum": ["low"]}}}) == \
        [("out.properties.level", False)]
    assert classify({**old, "properties": {**old["properties"], "extra": {"type": "string"}}}) == \
        [("out.properties.extra", False)]
    assert classify({**old, "properties": {"level": old["properties"]["level"]}, "required": ["level"]}) == \
        [("out.properties.score", True)]
    assert [c.breaking for c in compare_schemas(old, None, direction="output", path="out")] == [True]
    assert [c.breaking for c in compare_schemas(None, old, direction="output", path="out")] == [False]


BASE = """\
format: mcp-gateway/1
providers: {offline: {kind: mock}}
models: {default: {provider: offline, model: mock-1}}
include: [tools/*.yaml]
tools:
  - name: summarize
    description: Summarize.
    version: 1.2.0
    input_schema:
      type: object
      properties:
        text: {type: string}
        audience: {type: string, enum: [general, expert, executive]}
      required: [text]
    messages: [{role: user, content: "Summarize {{ text }} for {{ audience }}"}]
    model: default
    tests:
      - args: {text: otters}
        expect: {contains: otters}
"""
INCLUDED = """\
tools:
  - name: classify
    description: Classify.
    version: 1.0.0
    input_schema: {type: object, properties: {ticket: {type: string}}, required: [ticket]}
    output_schema:
      type: object
      properties: {category: {type: string, enum: [billing, bug]}}
      required: [category]
    messages: [{role: user, content: "{{ ticket }}"}]
    model: default
    tests:
      - args: {ticket: charged twice}
        expect: {schema: {type: object, required: [category]}}
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=CI", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A prompt repository with one commit on `main`: the config and an included tool file."""
    (tmp_path / "prompts" / "tools").mkdir(parents=True)
    (tmp_path / "prompts" / "gateway.yaml").write_text(BASE)
    (tmp_path / "prompts" / "tools" / "classify.yaml").write_text(INCLUDED)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "tools")
    return tmp_path


def diff(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcp_gateway", "diff", "--against", "main", "prompts/gateway.yaml",
                           *args], cwd=repo, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def edit(repo: Path, old: str, new: str, file: str = "prompts/gateway.yaml") -> None:
    path = repo / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_an_unchanged_working_tree_passes(repo):
    done = diff(repo)
    assert done.returncode == 0, done.stderr
    assert "0 tool(s) changed, 2 unchanged" in done.stdout


def test_a_breaking_change_without_a_major_bump_fails_with_a_reason(repo):
    edit(repo, "enum: [general, expert, executive]", "enum: [general, expert]")
    edit(repo, "version: 1.2.0", "version: 1.3.0")
    done = diff(repo)
    assert done.returncode == 1
    assert "BREAKING: input_schema.properties.audience: enum values removed: executive" in done.stdout
    assert ("error: 'summarize' 1.2.0 -> 1.3.0 is a breaking change without a major version bump "
            "(input_schema.properties.audience: enum values removed: executive). Release it as 2.0.0") in done.stderr


def test_the_same_breaking_change_with_a_major_bump_passes(repo):
    edit(repo, "enum: [general, expert, executive]", "enum: [general, expert]")
    edit(repo, "version: 1.2.0", "version: 2.0.0")
    done = diff(repo)
    assert done.returncode == 0, done.stderr
    assert "major version 1.2.0 -> 2.0.0 (breaking, allowed by the major bump" in done.stdout


def test_a_compatible_change_in_an_included_file_passes(repo):
    edit(repo, "properties: {ticket: {type: string}}", "properties: {ticket: {type: string}, lang: {type: string}}",
         "prompts/tools/classify.yaml")
    edit(repo, "version: 1.0.0", "version: 1.1.0", "prompts/tools/classify.yaml")
    done = diff(repo)
    assert done.returncode == 0, done.stderr
    assert "classify: changed" in done.stdout
    assert "compatible: input_schema.properties.lang: optional property added" in done.stdout


def test_an_output_change_that_breaks_readers_fails_even_in_place(repo):
    edit(repo, "enum: [billing, bug]}", "enum: [billing, bug, other]}", "prompts/tools/classify.yaml")
    done = diff(repo)
    assert done.returncode == 1
    assert ("'classify' 1.0.0 changed in a breaking way without a version change "
            "(output_schema.properties.category: enum values added: other)") in done.stderr


def test_a_published_tool_leaves_only_through_deprecation(repo):
    (repo / "prompts" / "tools" / "classify.yaml").write_text("tools: []\n")
    removed = diff(repo)
    assert removed.returncode == 1
    assert "'classify' 1.0.0 is removed while published" in removed.stderr
    assert "Deprecate it first" in removed.stderr

    (repo / "prompts" / "tools" / "classify.yaml").write_text(INCLUDED.replace(
        "version: 1.0.0", "version: 1.0.0\n    status: retired"))
    retired = diff(repo)
    assert retired.returncode == 1
    assert "goes from published straight to retired" in retired.stderr

    (repo / "prompts" / "tools" / "classify.yaml").write_text(INCLUDED.replace(
        "version: 1.0.0", "version: 1.0.0\n    status: deprecated\n    sunset: 2027-06-30"))
    git(repo, "commit", "-qam", "deprecate classify")
    (repo / "prompts" / "tools" / "classify.yaml").write_text("tools: []\n")
    after_deprecation = diff(repo)
    assert after_deprecation.returncode == 0, after_deprecation.stderr
    assert "removed 1.0.0 (was deprecated)" in after_deprecation.stdout


def test_eval_gate_needs_passing_tests_for_what_becomes_published(repo):
    edit(repo, "version: 1.2.0", "version: 1.3.0")
    edit(repo, "Summarize {{ text }}", "Briefly summarize {{ text }}")
    passing = diff(repo, "--gate")
    assert passing.returncode == 0, passing.stderr

    edit(repo, "expect: {contains: otters}", "expect: {contains: beavers}")
    failing = diff(repo, "--gate")
    assert failing.returncode == 1
    assert "'summarize' 1.3.0 test 'test 1' fails: expected the text to contain 'beavers'" in failing.stderr
    assert diff(repo).returncode == 0  # without the gate, only compatibility is checked

    edit(repo, "    tests:\n      - args: {text: otters}\n        expect: {contains: beavers}\n", "")
    untested = diff(repo, "--gate")
    assert untested.returncode == 1
    assert "'summarize' 1.3.0 becomes published (or changes while published) without tests" in untested.stderr


def test_two_files_and_an_unknown_ref(repo, tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(BASE.replace("include: [tools/*.yaml]\n", ""))
    new = tmp_path / "new.yaml"
    new.write_text(BASE.replace("include: [tools/*.yaml]\n", "").replace("version: 1.2.0", "version: 1.2.1"))
    done = subprocess.run([sys.executable, "-m", "mcp_gateway", "diff", str(old), str(new)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0 and "version 1.2.0 -> 1.2.1" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "mcp_gateway", "diff", "--against", "no-such-ref",
                          "prompts/gateway.yaml"], cwd=repo, capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: cannot read prompts/gateway.yaml at no-such-ref")
    assert "Traceback" not in bad.stderr
