"""Several versions of one tool side by side: which version each name reaches, on every surface."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_gateway._errors import ConfigError, ToolNotFoundError
from mcp_gateway._gateway import load_gateway
from mcp_gateway.client import RemoteError
from tests.lifecycle.support import VERSIONS_YAML, write_versions


@pytest.fixture
def gateway(tmp_path: Path):
    return load_gateway(write_versions(tmp_path))


@pytest.mark.parametrize(("requested", "version"), [
    ("summarize", "2.1.0"),            # newest published
    ("summarize.v2", "2.1.0"),
    ("summarize.v2.1", "2.1.0"),
    ("summarize.v2.1.0", "2.1.0"),
    ("summarize.v1", "1.4.0"),         # newest served 1.x (1.3.0 is retired)
    ("summarize.v1.4.0", "1.4.0"),
    ("summarize.staging", "3.0.0"),    # a label reaches a draft
])
def test_one_lookup_resolves_names_pins_and_labels(gateway, requested, version):
    assert gateway.catalog.tools.resolve(requested).config.version == version


@pytest.mark.parametrize(("requested", "message"), [
    ("summarize.v1.3.0", "Tool 'summarize' version 1.3.0 was retired on 2026-06-01; use 'summarize.v2' instead"),
    ("summarize.v3", "version 3 is a draft and not served"),
    ("summarize.v9", "Tool 'summarize' has no version 9 (versions: 3.0.0, 2.1.0, 1.4.0, 1.3.0)"),
    ("summarize.production", "Unknown tool: 'summarize.production'"),
    ("legacy_tool", "Tool 'legacy_tool' version 0.9.0 was retired; use 'summarize' instead"),
    ("nothing", "Unknown tool: 'nothing'"),
])
def test_names_that_reach_no_served_version_say_why(gateway, requested, message):
    with pytest.raises(ToolNotFoundError) as caught:
        gateway.catalog.tools.resolve(requested)
    assert message in str(caught.value)


def test_tools_list_shows_the_plain_name_and_each_other_served_major(gateway):
    listed = [(name, tool.config.version) for name, tool in gateway.catalog.tools.listed()]
    assert listed == [("summarize", "2.1.0"), ("summarize.v1", "1.4.0")]


def _loader_errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_gateway(path)
    return [str(issue) for issue in caught.value.issues]


def test_a_label_on_two_versions_is_a_located_error(tmp_path):
    text = VERSIONS_YAML.replace("    version: 2.1.0\n", "    version: 2.1.0\n    labels: [staging]\n")
    errors = _loader_errors(tmp_path, text)
    assert len(errors) == 1
    assert "gateway.yaml:39:14: tools[3].labels[0]: " in errors[0]
    assert "label 'staging' of tool 'summarize' already points at version 2.1.0" in errors[0]


def test_the_same_version_twice_and_a_name_that_looks_like_a_pin_are_located_errors(tmp_path):
    text = VERSIONS_YAML.replace("version: 3.0.0", "version: 2.1.0").replace(
        "  - name: legacy_tool\n", "  - name: summarize.v1\n")
    errors = _loader_errors(tmp_path, text)
    assert any(":34:5: tools[3]: tool 'summarize' version '2.1.0' is already defined at" in e for e in errors), errors
    assert any("tools[4].name: tool name 'summarize.v1' clashes with a pinned name of tool 'summarize'" in e
               for e in errors), errors


def test_a_label_that_looks_like_a_pin_is_a_located_error(tmp_path):
    errors = _loader_errors(tmp_path, VERSIONS_YAML.replace("labels: [staging]", "labels: [v2beta]"))
    assert len(errors) == 1
    assert "gateway.yaml:38:13: tools[3].labels: invalid label 'v2beta'" in errors[0]
    assert "reserved for version pins" in errors[0]


def test_an_unknown_replacement_is_a_located_error(tmp_path):
    errors = _loader_errors(tmp_path, VERSIONS_YAML.replace("replacement: summarize.v2", "replacement: sumarize"))
    assert len(errors) == 1
    assert "gateway.yaml:19:18: tools[1].replacement: replacement 'sumarize': Unknown tool: 'sumarize'" in errors[0]


@pytest.mark.anyio
async def test_every_result_names_the_version_that_answered(stdio_gateway, tmp_path, mode):
    logs: list[dict] = []

    async def on_log(params) -> None:
        logs.append(params.data)

    from mcp_gateway.client import connect
    from tests.conftest import serve_command

    async with connect(serve_command(write_versions(tmp_path)), mode=mode, timeout=30,  # type: ignore[arg-type]
                       logging_callback=on_log) as client:
        tools = {t.name: t for t in await client.list_tools()}
        assert list(tools) == ["summarize", "summarize.v1"]
        assert tools["summarize"].meta["mcp-gateway/tool"]["versions"] == ["2.1.0", "1.4.0"]
        assert tools["summarize.v1"].title == "summarize (v1.4.0)"
        assert tools["summarize.v1"].meta["mcp-gateway/version"] == "1.4.0"

        plain = await client.call_tool("summarize", {"text": "otters"})
        assert plain.meta["mcp-gateway/tool"] == {"name": "summarize", "version": "2.1.0", "status": "published"}
        assert "v2.1 otters (3)" in plain.content[0].text

        for _ in range(2):
            pinned = await client.call_tool("summarize.v1", {"text": "otters"})
            assert pinned.meta["mcp-gateway/tool"] == {
                "name": "summarize", "version": "1.4.0", "status": "deprecated",
                "deprecation": {"replacement": "summarize.v2", "sunset": "2027-03-01",
                                "note": "Version 2 takes max_sentences."}}

        failed = await client.call_tool("summarize.v1", {})  # a failed answer names its version too
        assert failed.is_error and failed.meta["mcp-gateway/tool"]["version"] == "1.4.0"

        staged = await client.call_tool("summarize.staging", {"text": "otters"})
        assert staged.meta["mcp-gateway/tool"]["version"] == "3.0.0"
        assert "v3 otters" in staged.content[0].text

        with pytest.raises(RemoteError, match="version 1.3.0 was retired on 2026-06-01; use 'summarize.v2'"):
            await client.call_tool("summarize.v1.3.0", {"text": "otters"})

        prompt = await client.get_prompt("summarize.v1", {"text": "otters"})
        assert "v1.4 otters" in prompt.messages[0].content.text
    if mode == "legacy":  # the handshake era has a session to remember what it was told
        warnings = [entry for entry in logs if isinstance(entry, dict) and "deprecated" in str(entry.get("message"))]
        assert len(warnings) == 1, logs
        assert warnings[0]["message"] == ("tool 'summarize' version 1.4.0 is deprecated and will be retired on "
                                          "2027-03-01; use 'summarize.v2' instead")
