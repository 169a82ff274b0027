"""The published JSON Schema matches the models, and every example is valid and points at it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from mcp_gateway._gateway import load_gateway
from mcp_gateway.config import config_json_schema
from tests.conftest import ROOT

SCHEMA_FILE = ROOT / "schemas" / "gateway.schema.json"
EXAMPLE_YAML = sorted((ROOT / "examples").rglob("*.yaml"))


def test_schema_file_is_generated_from_the_models():
    assert json.loads(SCHEMA_FILE.read_text()) == config_json_schema(), (
        "schemas/gateway.schema.json is stale: run `mcp-gateway schema -o schemas/gateway.schema.json`")


@pytest.mark.parametrize("path", EXAMPLE_YAML, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_files_validate_against_the_schema_and_point_editors_at_it(path: Path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    target = (path.parent / first.split("$schema=", 1)[1]).resolve()
    assert target == SCHEMA_FILE
    jsonschema.validate(yaml.safe_load(path.read_text()), json.loads(SCHEMA_FILE.read_text()))


def test_every_root_example_loads():
    roots = [p for p in EXAMPLE_YAML if "format: mcp-gateway/1" in p.read_text()]
    assert roots
    for root in roots:
        gateway = load_gateway(root)
        assert len(gateway.catalog.tools) > 0


def test_claude_desktop_snippet_starts_the_gateway():
    snippet = json.loads((ROOT / "examples" / "claude_desktop_config.json").read_text())
    [server] = snippet["mcpServers"].values()
    assert server["command"] == "mcp-gateway" and server["args"][0] == "serve"
