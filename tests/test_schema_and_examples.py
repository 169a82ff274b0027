"""The published JSON Schema matches the models, and every example is valid and points at it."""

from __future__ import annotations

import json
import shutil
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


EXAMPLE_ENV = {"OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "x", "GEMINI_API_KEY": "x",
               "MOCK_LLM": "http://127.0.0.1:8089"}


def test_every_root_example_loads():
    roots = [p for p in EXAMPLE_YAML if "format: mcp-gateway/1" in p.read_text()]
    assert len(roots) >= 2
    for root in roots:
        gateway = load_gateway(root, environ=EXAMPLE_ENV)
        assert len(gateway.catalog.tools) > 0


@pytest.mark.anyio
@pytest.mark.parametrize("alias", ["gpt", "claude", "gemini", "local"])
async def test_switching_provider_is_a_one_line_change(tmp_path, alias):
    from servers.mock_llm import running_mock_llm

    source = (ROOT / "examples" / "providers.yaml").read_text()
    variant = source.replace("    model: gpt               # try", f"    model: {alias}               # try")
    assert variant != source or alias == "gpt"
    (tmp_path / "providers.yaml").write_text(variant)
    shutil.copytree(ROOT / "examples" / "prompts", tmp_path / "prompts")
    async with running_mock_llm() as base_url:
        gateway = load_gateway(tmp_path / "providers.yaml", environ={**EXAMPLE_ENV, "MOCK_LLM": base_url})
        try:
            answer = await gateway.call_tool("summarize", {"text": "Otters hold hands."})
            classified = await gateway.call_tool("classify_ticket", {"ticket": "I was charged twice"})
        finally:
            await gateway.aclose()
    assert "Otters hold hands." in answer.text and answer.completion.usage.output_tokens > 0
    assert answer.route.provider.name == {"gpt": "openai", "claude": "anthropic", "gemini": "gemini",
                                          "local": "ollama"}[alias]
    assert set(classified.structured) == {"category", "urgency"}
