"""`init` makes a project that works offline at once; `install` writes a desktop client's config;
`dev` serves with reload and a readable line per call."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from click.testing import CliRunner

from mcp_gateway.cli import main
from tests.conftest import EXAMPLE

GATEWAY = [sys.executable, "-m", "mcp_gateway"]


def test_init_makes_a_project_that_answers_offline(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(main, ["init", str(tmp_path / "proj")])
    assert made.exit_code == 0, made.output
    root = tmp_path / "proj"
    config = root / "gateway.yaml"
    assert config.read_text().startswith("# yaml-language-server: $schema=./gateway.schema.json\n")
    assert json.loads((root / "gateway.schema.json").read_text())["title"]
    assert (root / "README.md").read_text().startswith("# proj\n")
    checked = runner.invoke(main, ["validate", str(config), "--json"])
    assert checked.exit_code == 0, checked.output
    assert {t["name"] for t in json.loads(checked.output)["tools"]} == {"greet", "chat"}
    serve = f"{sys.executable} -m mcp_gateway serve {config}"
    called = subprocess.run(
        [*GATEWAY, "call", serve, "greet", "--arg", "name=Ada"], capture_output=True, text=True, timeout=60
    )
    assert called.returncode == 0 and "Greet Ada in English." in called.stdout, called.stderr
    chatted = subprocess.run(
        [*GATEWAY, "chat", serve], input="hi\nagain\n/history\n", capture_output=True, text=True, timeout=60
    )
    assert chatted.returncode == 0 and "2 turns" in chatted.stdout, chatted.stderr
    again = runner.invoke(main, ["init", str(root)])
    assert again.exit_code == 1 and "already exist" in again.output and "--force" in again.output


def test_install_writes_absolute_paths_and_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    target = tmp_path / "claude" / "claude_desktop_config.json"
    target.parent.mkdir()
    target.write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}, "theme": "dark"}))
    providers = EXAMPLE.parent / "providers.yaml"
    runner = CliRunner()
    shown = runner.invoke(
        main, ["install", "claude-desktop", str(providers), "--config-path", str(target), "--dry-run"]
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(target.read_text())["mcpServers"].keys() == {"other"}  # a dry run writes nothing
    entry = json.loads(shown.output)["mcpServers"]["provider-gateway"]
    assert Path(entry["command"]).is_absolute() and Path(entry["command"]).name == "mcp-gateway"
    assert entry["args"] == ["serve", str(providers.resolve())]
    assert entry["env"] == {
        n: f"<set {n}>" for n in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "MOCK_LLM", "OPENAI_API_KEY")
    }
    written = runner.invoke(main, ["install", "claude-desktop", str(providers), "--config-path", str(target)])
    assert written.exit_code == 0, written.output
    saved = json.loads(target.read_text())
    assert saved["theme"] == "dark" and set(saved["mcpServers"]) == {"other", "provider-gateway"}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    declined = runner.invoke(
        main,
        ["install", "claude-desktop", str(providers), "--config-path", str(target), "--copy-env"],
        input="n\n",
    )
    assert declined.exit_code == 1 and "replace it?" in declined.output
    assert json.loads(target.read_text()) == saved
    replaced = runner.invoke(
        main, ["install", "cursor", str(providers), "--config-path", str(target), "--copy-env"], input="y\n"
    )
    assert replaced.exit_code == 0, replaced.output
    assert (
        json.loads(target.read_text())["mcpServers"]["provider-gateway"]["env"]["OPENAI_API_KEY"] == "sk-test"
    )


def test_install_refuses_an_invalid_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: mcp-gateway/1\ntools: [{name: x}]\n")
    result = CliRunner().invoke(
        main, ["install", "cursor", str(bad), "--config-path", str(tmp_path / "m.json")]
    )
    assert result.exit_code == 2 and "missing required field 'description'" in result.output
    assert not (tmp_path / "m.json").exists()


def test_dev_logs_each_call_and_reloads_on_change(tmp_path: Path) -> None:
    CliRunner().invoke(main, ["init", str(tmp_path)])
    config = tmp_path / "gateway.yaml"
    proc = subprocess.Popen(
        [*GATEWAY, "dev", str(config), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        stdout=subprocess.DEVNULL,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()  # type: ignore[union-attr]

    def wait_for(pattern: str) -> re.Match[str]:
        seen = []
        while True:
            line = lines.get(timeout=180)  # a hang guard only
            seen.append(line)
            if found := re.search(pattern, line):
                return found
            assert proc.poll() is None, "".join(seen)

    try:
        url = wait_for(r"serving \d+ tools on (http://\S+/mcp)").group(1)
        called = subprocess.run(
            [*GATEWAY, "call", url, "greet", "--arg", "name=Ada"], capture_output=True, text=True, timeout=60
        )
        assert called.returncode == 0, called.stderr
        line = wait_for(r"greet .*->").string
        assert re.search(
            r"\d\d:\d\d:\d\d greet\s+-> default \(offline/mock-1\)  \d+\+\d+ tokens  "
            r"(\$\d+\.\d{6}|cost \?)  \d+ ms",
            line,
        ), line
        tool = tmp_path / "tools" / "greet.yaml"
        _replace(tool, tool.read_text().replace("name: greet", "name: welcome"))
        wait_for(r"now serving 2 tools")
        _replace(tool, "tools: [")
        wait_for(r"reload refused, still serving the previous config")
        listed = subprocess.run([*GATEWAY, "tools", url], capture_output=True, text=True, timeout=60)
        assert "welcome" in listed.stdout and "greet" not in listed.stdout, listed.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert os.path.exists(config)


def _replace(path: Path, text: str) -> None:
    """Write a file the way editors do (a new file renamed over it): the watcher never reads half."""
    partial = path.with_suffix(".tmp")
    partial.write_text(text)
    partial.replace(path)

