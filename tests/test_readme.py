"""The README's two first-screen commands stay true: CI runs the test one verbatim, and the run
command names an example and a tool that exist."""

from __future__ import annotations

import re
import shlex

from mcp_gateway._gateway import load_gateway
from tests.conftest import ROOT


def _first_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.+?)\n```", text)[:2]


def test_ci_runs_the_readme_test_command_verbatim():
    _, test_command = _first_commands()
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_run_command_calls_an_example_tool():
    run_command, _ = _first_commands()
    words = shlex.split(run_command.split("&&")[-1])
    assert words[1] == "call"
    serve = shlex.split(words[2])
    assert serve[1:] == ["serve", "examples/gateway.yaml"]
    served = {t.name for t in load_gateway(ROOT / serve[2]).catalog.tools.served()}
    assert words[3] in served
