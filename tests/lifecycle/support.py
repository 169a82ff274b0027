"""A config with several versions of one tool, as the lifecycle tests use it."""

from __future__ import annotations

from pathlib import Path

VERSIONS_YAML = """\
format: mcp-gateway/1
providers:
  offline: {kind: mock}
models:
  default: {provider: offline, model: mock-1}
tools:
  - name: summarize
    description: Summarize a text.
    version: 1.3.0
    status: retired
    sunset: 2026-06-01
    input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
    messages: [{role: user, content: "v1.3 {{ text }}"}]
    model: default
  - name: summarize
    description: Summarize a text.
    version: 1.4.0
    status: deprecated
    replacement: summarize.v2
    sunset: 2027-03-01
    deprecation_note: Version 2 takes max_sentences.
    input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
    messages: [{role: user, content: "v1.4 {{ text }}"}]
    model: default
  - name: summarize
    description: Summarize a text in at most max_sentences sentences.
    version: 2.1.0
    input_schema:
      type: object
      properties: {text: {type: string}, max_sentences: {type: integer, default: 3}}
      required: [text]
    messages: [{role: user, content: "v2.1 {{ text }} ({{ max_sentences }})"}]
    model: default
  - name: summarize
    description: Summarize a text, with a style.
    version: 3.0.0
    status: draft
    labels: [staging]
    input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
    messages: [{role: user, content: "v3 {{ text }}"}]
    model: default
  - name: legacy_tool
    description: Gone.
    version: 0.9.0
    status: retired
    replacement: summarize
    messages: [{role: user, content: "old"}]
    model: default
"""


def write_versions(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(VERSIONS_YAML)
    return path
