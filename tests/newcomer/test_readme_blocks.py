"""Every code block of the README works as written: YAML configs validate (every stage `serve`
runs), JSON parses, Python runs, shell commands run offline. A block that cannot run here is
marked just above its fence with `<!-- readme-test: skip (reason) -->`; that list stays tiny."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_gateway.cli._validate import check_config
from tests.conftest import ROOT

_BLOCK = re.compile(
    r"(?:<!-- readme-test: skip \((?P<why>[^)]+)\) -->\n)?```(?P<lang>[^\n]*)\n(?P<body>.*?)\n```", re.S
)
_FIRST_SCREEN = 2  # the install-and-run and the run-every-test commands: tests/test_readme.py covers them


def _blocks() -> list[tuple[int, str, str, str | None]]:
    text = (ROOT / "README.md").read_text()
    return [
        (text[: m.start()].count("\n") + 1, m["lang"].strip(), m["body"], m["why"])
        for m in _BLOCK.finditer(text)
    ]


BLOCKS = _blocks()
RUN = [b for b in BLOCKS[_FIRST_SCREEN:] if b[3] is None]


def test_every_block_says_its_language_and_few_are_skipped() -> None:
    assert all(lang for _, lang, _, _ in BLOCKS), [line for line, lang, _, _ in BLOCKS if not lang]
    assert {lang for _, lang, _, _ in BLOCKS} <= {"bash", "yaml", "python", "json", "text"}
    skipped = [(line, why) for line, _, _, why in BLOCKS if why]
    # A long-running server, and three blocks that need one running (curl, the openai SDK, and
    # `usage --url`, which reads a live gateway's in-memory ledger); nothing else may be skipped.
    assert len(skipped) <= 4, skipped


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A fresh directory with the repository's examples, as a shell in the clone would see them."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / "schemas").symlink_to(ROOT / "schemas")
    return tmp_path


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MCP_GATEWAY_DEBUG"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(workdir)  # `install` without --config-path would write here, never to the real home
    return env


@pytest.mark.parametrize(
    ("line", "lang", "body"),
    [(b[0], b[1], b[2]) for b in RUN if b[1] == "yaml"],
    ids=lambda v: f"line{v}" if isinstance(v, int) else "",
)
def test_yaml_blocks_validate(line: int, lang: str, body: str, workdir: Path) -> None:
    config = workdir / "gateway.yaml"
    config.write_text(body)
    names = set(re.findall(r"\$\{env:(\w+)\}", body))
    check_config(config, environ={**os.environ, **{n: "s3cret-" + "x" * 40 for n in names}})


@pytest.mark.parametrize(
    ("line", "lang", "body"),
    [(b[0], b[1], b[2]) for b in RUN if b[1] == "json"],
    ids=lambda v: f"line{v}" if isinstance(v, int) else "",
)
def test_json_blocks_parse(line: int, lang: str, body: str) -> None:
    json.loads(body)


@pytest.mark.parametrize(
    ("line", "lang", "body"),
    [(b[0], b[1], b[2]) for b in RUN if b[1] in ("bash", "python")],
    ids=lambda v: f"line{v}" if isinstance(v, int) else "",
)
def test_code_blocks_run(line: int, lang: str, body: str, workdir: Path) -> None:
    argv = ["bash", "-euo", "pipefail", "-c", body] if lang == "bash" else [sys.executable, "-c", body]
    done = subprocess.run(
        argv,
        cwd=workdir,
        env=_env(workdir),
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, (
        f"README line {line}:\n{body}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    assert "Traceback" not in done.stderr


def test_the_example_client_config_uses_absolute_paths_and_env() -> None:
    entry = json.loads((ROOT / "examples" / "claude_desktop_config.json").read_text())["mcpServers"][
        "example-gateway"
    ]
    assert entry["command"].startswith("/") and entry["command"].endswith("/.venv/bin/mcp-gateway")
    assert entry["args"][0] == "serve" and entry["args"][1].startswith("/")
    assert isinstance(entry["env"], dict)
