"""`mcp-gateway init`: a new gateway project that validates and answers offline at once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

__all__ = ["init"]

_ROOT = """\
# yaml-language-server: $schema=./gateway.schema.json
#
# A gateway made by `mcp-gateway init`. Everything answers offline (the `mock` provider) until
# you point the `default` model at a real provider, e.g.:
#   providers:
#     openai: {{kind: openai, api_key: "${{env:OPENAI_API_KEY}}"}}
#   models:
#     default: {{provider: openai, model: gpt-4o-mini}}
format: mcp-gateway/1

server:
  name: {name}

providers:
  offline:
    kind: mock            # deterministic, no network, no key

models:
  default:
    provider: offline
    model: mock-1

sessions:
  store: memory           # or sqlite (path: sessions.db) to keep sessions across restarts

include:
  - tools/*.yaml
"""

_TOOL = """\
# yaml-language-server: $schema=../gateway.schema.json
tools:
  - name: greet
    description: Greet someone by name, in a given language.
    input_schema:
      type: object
      properties:
        name: {type: string, minLength: 1, description: Who to greet.}
        language: {type: string, enum: [English, French, German], default: English}
      required: [name]
    messages:
      - role: system
        content: You write short, warm greetings.
      - role: user
        content: "Greet {{ name }} in {{ language }}."
    model: default
"""

_CHAT = """\
# yaml-language-server: $schema=../gateway.schema.json
tools:
  - name: chat
    description: Chat with an assistant that remembers the conversation (a session).
    input_schema:
      type: object
      properties:
        message: {type: string, minLength: 1}
      required: [message]
    context: {turns: 20}  # each call sees the newest 20 turns of its session
    messages:
      - role: system
        content: >-
          You are a helpful assistant.{% if session.state.name %}
          The user is {{ session.state.name }}.{% endif %}
      - role: user
        content: "{{ message }}"
    model: default
"""

_README = """\
# {name}

A prompt-tool gateway made with `mcp-gateway init`. It answers offline until `gateway.yaml`
points the `default` model at a real provider.

```bash
mcp-gateway validate gateway.yaml                      # check it; list the tools
mcp-gateway render gateway.yaml greet --arg name=Ada   # the messages a call would send
mcp-gateway call "mcp-gateway serve gateway.yaml" greet --arg name=Ada
mcp-gateway chat "mcp-gateway serve gateway.yaml"      # a conversation with the chat tool
mcp-gateway dev gateway.yaml                           # serve over HTTP, reload on change, log calls
mcp-gateway install claude-desktop gateway.yaml        # add it to Claude Desktop
```

Tools live in `tools/*.yaml`; `gateway.schema.json` gives editors completion and checks.
"""


def _files(name: str) -> dict[str, str]:
    from ..config import config_json_schema

    return {
        "gateway.yaml": _ROOT.format(name=name),
        "tools/greet.yaml": _TOOL,
        "tools/chat.yaml": _CHAT,
        "gateway.schema.json": json.dumps(config_json_schema(), indent=2, ensure_ascii=False) + "\n",
        "README.md": _README.format(name=name),
    }


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--name", help="Server name reported to clients (default: the directory's name).")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: str, name: str | None, force: bool) -> None:
    """Create a gateway project in DIRECTORY (default: here) that runs offline at once.

    Writes gateway.yaml (the offline mock provider, memory sessions), tools/greet.yaml (a tool),
    tools/chat.yaml (a tool that remembers its session), gateway.schema.json (editor completion
    through the `# yaml-language-server: $schema=` comment) and a README.md. Existing files are
    left alone unless --force.
    """
    root = Path(directory)
    server_name = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", root.resolve().name).strip("-.") or "gateway"
    files = _files(server_name)
    existing = [p for p in files if (root / p).exists()]
    if existing and not force:
        raise click.ClickException(
            f"{', '.join(str(root / p) for p in existing)} already exist(s); "
            "use --force to overwrite, or another directory"
        )
    for relative, text in files.items():
        path = root / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None
    config = root / "gateway.yaml"
    click.echo(
        f"created {', '.join(str(root / p) for p in files)}\n\nnext:\n"
        f"  mcp-gateway validate {config}\n"
        f'  mcp-gateway call "mcp-gateway serve {config}" greet --arg name=Ada\n'
        f'  mcp-gateway chat "mcp-gateway serve {config}"'
    )
