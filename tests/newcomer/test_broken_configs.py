"""Every command, on every kind of broken config: a clear error and an exit status, never a
traceback; `validate` reports whatever `serve` refuses, located, with status 2; and the six typical
mistakes of issue 11 come out in one run, each once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mcp_gateway.cli import main

HERE = Path(__file__).parent / "configs"

_TOOL = """\
tools:
  - name: echo
    description: Echo.
    input_schema: {type: object, properties: {text: {type: string}}}
    messages: [{role: user, content: "{{ text }}"}]
    model: default
"""
_HEAD = (
    "format: mcp-gateway/1\nproviders: {offline: {kind: mock}}\n"
    "models: {default: {provider: offline, model: m}}\n"
)

BROKEN = {
    "not_yaml": "format: [unclosed\n  - x: {",
    "empty": "",
    "a_list": "- 1\n- 2\n",
    "binary": b"\x00\xff\xfe garbage",
    "jwt_secret_unset": _HEAD
    + 'auth:\n  jwt: {secret: "${env:NEWCOMER_UNSET_SECRET}", issuer: i, audience: a}\n'
    + _TOOL,
    "corrupt_keys": _HEAD + "auth: {keys_file: keys.json}\n" + _TOOL,
    "audit_is_a_directory": _HEAD + "audit: {path: adir}\n" + _TOOL,
    "sqlite_sessions_in_a_directory": _HEAD + "sessions: {store: sqlite, path: adir}\n" + _TOOL,
    "redis_url_unset": _HEAD + 'sessions: {store: redis, url: "${env:NEWCOMER_UNSET_URL}"}\n' + _TOOL,
    "unknown_model": _HEAD.replace("default:", "other:") + _TOOL,
    "bad_include": _HEAD + "include: [../../etc/passwd, missing.yaml]\n" + _TOOL,
}


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    (tmp_path / "adir").mkdir(exist_ok=True)
    (tmp_path / "keys.json").write_text("{not json")
    path = tmp_path / f"{name}.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _configs(tmp_path: Path) -> list[Path]:
    return [_write(tmp_path, n, c) for n, c in BROKEN.items()] + [
        HERE / "six_mistakes.yaml",
        HERE / "bad_indent.yaml",
        tmp_path / "missing.yaml",
        tmp_path / "adir",
    ]


COMMANDS = [
    ["validate", "{c}"],
    ["validate", "{c}", "--json"],
    ["render", "{c}", "echo", "--arg", "text=x"],
    ["serve", "{c}"],
    ["sessions", "list", "{c}"],
    ["keys", "list", "{c}"],
    ["install", "claude-desktop", "{c}", "--dry-run"],
    ["dev", "{c}", "--port", "0"],
]


def test_no_command_ends_in_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWCOMER_UNSET_SECRET", raising=False)
    monkeypatch.delenv("NEWCOMER_UNSET_URL", raising=False)
    monkeypatch.delenv("MCP_GATEWAY_DEBUG", raising=False)
    runner = CliRunner()
    for config in _configs(tmp_path):
        for command in COMMANDS:
            args = [a.format(c=config) for a in command]
            result = runner.invoke(main, args, input="")
            where = f"{' '.join(args)}:\n{result.output}"
            assert result.exception is None or isinstance(result.exception, SystemExit), where
            # validate refuses what serve would; other commands may work on what they need
            assert result.exit_code in ((2,) if args[0] == "validate" else (0, 1, 2)), where
            assert "Traceback" not in result.output and "unexpected" not in result.output, where


def test_validate_reports_what_serve_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEWCOMER_UNSET_SECRET", raising=False)
    runner = CliRunner()
    for name in ("jwt_secret_unset", "audit_is_a_directory"):
        config = _write(tmp_path, name, BROKEN[name])
        result = runner.invoke(main, ["validate", str(config), "--json"])
        assert result.exit_code == 2, (name, result.output)
        errors = json.loads(result.output)["errors"]
        assert errors and all(e["file"].endswith(f"{name}.yaml") and e["line"] > 1 for e in errors), errors
        refused = runner.invoke(main, ["serve", str(config)], input="")
        assert refused.exit_code in (1, 2), (name, refused.output)


def test_six_typical_mistakes_at_once_each_once() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mcp_gateway", "validate", str(HERE / "six_mistakes.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=HERE,
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "6 errors in the configuration"
    expected = [
        "six_mistakes.yaml:7:14: providers.openai.api_key: write secrets as an environment reference",
        "six_mistakes.yaml:13:11: tools[0].name: invalid name 'summarize text'",
        "six_mistakes.yaml:26:5: tools[1].input_shema: unknown field 'input_shema'; "
        "did you mean 'input_schema'?",
        "six_mistakes.yaml:35:5: tools[2]: missing required field 'description'",
        "six_mistakes.yaml:54:20: tools[3].input_schema.properties.tone.default: "
        "default fails its own schema: 'friendly' is not one of ['formal', 'casual']",
        "six_mistakes.yaml:58:18: tools[3].messages[0].content: "
        "template uses 'audience', which is not a property",
    ]
    assert len(lines) == 1 + len(expected)
    for line, start in zip(lines[1:], expected, strict=True):
        assert line.strip().startswith(start), line


def test_a_bad_indentation_is_reported_once() -> None:
    result = CliRunner().invoke(main, ["validate", str(HERE / "bad_indent.yaml"), "--json"])
    errors = json.loads(result.output)["errors"]
    assert [(e["line"], e["path"]) for e in errors] == [(11, "tools[0].input_schema.properties.required")]
    assert errors[0]["message"] == "invalid JSON Schema: ['query'] is not of type 'object', 'boolean'"
