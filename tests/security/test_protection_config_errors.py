"""build_protections reports unusable auth settings as located config errors (serve exits 2 with
file:line:column, no traceback), and never shows the secret."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mcp_gateway._errors import ConfigError
from mcp_gateway.config import load_config
from mcp_gateway.server import build_protections

BASE = """\
format: mcp-gateway/1
providers: {offline: {kind: mock}}
models: {m: {provider: offline, model: mock-1}}
tools:
  - {name: t, description: T., model: m, messages: [{role: user, content: hi}]}
"""


def write(tmp_path: Path, auth: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(BASE + textwrap.dedent(auth))
    return path


def test_a_too_short_jwt_secret_is_a_located_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        auth:
          jwt: {secret: "${env:SHORT_SECRET}"}
    """)
    with pytest.raises(ConfigError) as info:
        build_protections(load_config(path), {"SHORT_SECRET": "tooshort"})
    [issue] = info.value.issues
    assert issue.line == 7 and issue.path == "auth.jwt.secret"
    assert "at least" in issue.message and "tooshort" not in str(info.value)


def test_a_corrupt_key_file_is_a_located_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        auth:
          keys_file: keys.json
    """)
    (tmp_path / "keys.json").write_text("{not json")
    with pytest.raises(ConfigError) as info:
        build_protections(load_config(path), {})
    [issue] = info.value.issues
    assert issue.path == "auth.keys_file" and issue.line == 7
    assert "not a valid key file" in issue.message


@pytest.mark.parametrize("case", ["short-secret", "corrupt-keys"])
def test_serve_exits_2_with_the_error_and_no_traceback(tmp_path: Path, case: str) -> None:
    if case == "short-secret":
        path = write(tmp_path, "auth:\n  jwt: {secret: \"${env:SHORT_SECRET}\"}\n")
    else:
        path = write(tmp_path, "auth:\n  keys_file: keys.json\n")
        (tmp_path / "keys.json").write_text('{"version": 1, "keys": [{"id": 1}]}')
    result = subprocess.run([sys.executable, "-m", "mcp_gateway", "serve", str(path), "--transport", "http",
                             "--port", "0"], capture_output=True, text=True, timeout=60,
                            env={"SHORT_SECRET": "tooshort", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2, result.stderr
    assert f"{path}:7:" in result.stderr and "Traceback" not in result.stderr
