"""`mcp-gateway install`: add a gateway to a desktop MCP client's config file."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .._errors import ConfigError

__all__ = ["client_config_path", "install"]

CLIENTS = ("claude-desktop", "cursor")
_UNSET = re.compile(r"^environment variable \w+ is not set")


def client_config_path(client: str) -> Path:
    """Where `client` keeps its MCP servers on this platform."""
    home = Path.home()
    if client == "cursor":
        return home / ".cursor" / "mcp.json"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if sys.platform == "win32":
        return (
            Path(os.environ.get("APPDATA", home / "AppData" / "Roaming"))
            / "Claude"
            / "claude_desktop_config.json"
        )
    return Path(os.environ.get("XDG_CONFIG_HOME", home / ".config")) / "Claude" / "claude_desktop_config.json"


def _executable() -> str:
    """The absolute path of `mcp-gateway`: a desktop app does not see the shell's PATH or venv."""
    beside = Path(sys.executable).parent / ("mcp-gateway.exe" if sys.platform == "win32" else "mcp-gateway")
    if beside.is_file():
        return str(beside)
    found = shutil.which("mcp-gateway")
    return str(Path(found).resolve()) if found else str(beside)


def _env_names(files: Sequence[str]) -> list[str]:
    """The ${env:VAR} names in the values (not the comments) of the config's files: the server
    needs them in its environment."""
    from ..config import ENV_REF
    from ..config._yaml import parse_yaml

    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            names.update(ENV_REF.findall(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for file in files:
        try:
            doc, _ = parse_yaml(Path(file).read_text(encoding="utf-8"), file)
        except (OSError, UnicodeDecodeError):
            continue
        if doc is not None:
            walk(doc.data)
    return sorted(names)


@click.command()
@click.argument("client", type=click.Choice(CLIENTS))
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--name", help="The server's name in the client (default: the config's server name).")
@click.option(
    "--config-path",
    type=click.Path(dir_okay=False),
    help="The client's config file (default: where CLIENT keeps it on this platform).",
)
@click.option(
    "--copy-env",
    is_flag=True,
    help="Copy the values of the variables the config needs from this shell into the client's config "
    "(they are written in plain text); otherwise placeholders are written for you to fill in.",
)
@click.option("--dry-run", is_flag=True, help="Print the resulting client config instead of writing it.")
@click.option("--yes", "-y", is_flag=True, help="Replace an existing server of the same name without asking.")
def install(
    client: str,
    config: str,
    name: str | None,
    config_path: str | None,
    copy_env: bool,
    dry_run: bool,
    yes: bool,
) -> None:
    """Add CONFIG to CLIENT's MCP servers (claude-desktop or cursor), with absolute paths.

    The entry runs `mcp-gateway serve CONFIG` by absolute path (a desktop app does not see your
    shell's PATH or virtualenv), and has an `env` block with every variable the config references
    as ${env:VAR}. The config is validated first; other servers in the file are kept.
    """
    from ..config import load_config
    from ._validate import check_config

    try:
        check_config(config)
    except ConfigError as exc:
        # Variables unset here are the client's to set (in the env block written below).
        problems = [i for i in exc.issues if not _UNSET.match(i.message)]
        if problems:
            click.echo(str(ConfigError(problems)), err=True)
            raise SystemExit(2) from None
    loaded = load_config(config)
    server_name = name or loaded.server.name
    env = {n: os.environ.get(n, "") if copy_env else f"<set {n}>" for n in _env_names(loaded.files)}
    entry: dict[str, Any] = {"command": _executable(), "args": ["serve", str(Path(config).resolve())]}
    if env:
        entry["env"] = env
    target = Path(config_path) if config_path else client_config_path(client)
    current = _read(target)
    servers = current.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise click.ClickException(f"{target}: 'mcpServers' is not an object; fix the file first")
    replacing = server_name in servers and servers[server_name] != entry
    servers[server_name] = entry
    text = json.dumps(current, indent=2, ensure_ascii=False) + "\n"
    if dry_run:
        click.echo(text, nl=False)
        return
    if (
        replacing
        and not yes
        and not click.confirm(
            f"{target} already has a server named {server_name!r}; replace it?", default=False, err=True
        )
    ):
        raise click.ClickException("nothing written")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".tmp")
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None
    click.echo(f"added {server_name!r} to {target}", err=True)
    missing = [n for n, v in env.items() if not v or v.startswith("<set ")]
    if missing:
        click.echo(f"fill in {', '.join(missing)} in its env block (or rerun with --copy-env)", err=True)
    click.echo(f"restart {client} to load it", err=True)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        value = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}; fix or move it first") from None
    if not isinstance(value, dict):
        raise click.ClickException(f"{path} is not a JSON object; fix or move it first")
    return value
