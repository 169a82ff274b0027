"""Strategy fanout: one request to every target at once; every answer (merge: all) or the first valid
one (merge: first_valid), each target's cost accounted, each target under its own timeout. Runs the
real gateway against offline mock providers and the wire-accurate mock LLM over loopback HTTP."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mcp_gateway import load_gateway
from mcp_gateway._errors import ConfigError, ProviderError
from mcp_gateway._fanout import fanout_output_schema

pytestmark = pytest.mark.anyio

SCHEMA = ("{type: object, properties: {label: {type: string, enum: [good, bad]}, "
          "score: {type: integer, minimum: 0, maximum: 9}}, required: [label, score], additionalProperties: false}")


def config(models: str, *, output_schema: bool = True, root: str = "http://127.0.0.1:1") -> str:
    schema = f"    output_schema: {SCHEMA}\n" if output_schema else ""
    return textwrap.dedent(f"""\
        format: mcp-gateway/1
        providers:
          fast: {{kind: mock}}
          other: {{kind: mock}}
          medium: {{kind: mock, settings: {{latency_ms: 500}}}}
          slow: {{kind: mock, settings: {{latency_ms: 20000}}}}
          down: {{kind: mock, settings: {{fail_with: "HTTP 503 (scripted outage)"}}}}
          wire: {{kind: openai, base_url: "{root}/v1"}}
        prices:
          fast/m-fast: {{input: 1, output: 2}}
          other/m-other: {{input: 3, output: 4}}
        models:
        """) + textwrap.indent(textwrap.dedent(models), "  ") + textwrap.dedent("""\
        tools:
          - name: judge
            description: Judge a sentence.
            model: compare
            messages: [{role: user, content: "Judge: {{ text }}"}]
            input_schema: {type: object, properties: {text: {type: string}}, required: [text]}
        """) + schema


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


async def test_merge_all_returns_every_answer_with_its_cost(tmp_path: Path) -> None:
    gateway = load_gateway(write(tmp_path, config("""
        compare:
          strategy: fanout
          targets:
            - {provider: fast, model: m-fast}
            - {provider: down, model: m-down}
            - {provider: other, model: m-other}
        """)))
    try:
        answer = await gateway.call_tool("judge", {"text": "the soup was cold"})
    finally:
        await gateway.aclose()
    entries = answer.structured["answers"]
    assert [e["target"] for e in entries] == ["fast/m-fast", "down/m-down", "other/m-other"]
    assert [e["ok"] for e in entries] == [True, False, True]
    jsonschema.validate(answer.structured, fanout_output_schema(gateway.catalog.tools.get("judge").config.output_schema))
    assert "scripted outage" in entries[1]["error"]
    for entry, (price_in, price_out) in ((entries[0], (1, 2)), (entries[2], (3, 4))):
        usage = entry["usage"]
        assert entry["cost_usd"] == pytest.approx((usage["input_tokens"] * price_in + usage["output_tokens"] * price_out) / 1e6)
        assert entry["structured"]["label"] in ("good", "bad")
    assert float(answer.routed.cost_usd) == pytest.approx(entries[0]["cost_usd"] + entries[2]["cost_usd"])
    assert answer.routed.describe()["fanout"][1]["ok"] is False
    assert len(answer.routed.attempts) == 3
    targets = gateway.router.ledger.snapshot()["targets"]  # every target's call is in the totals
    assert set(targets) == {"fast/m-fast", "down/m-down", "other/m-other"}
    assert float(targets["other/m-other"]["cost_usd"]) == pytest.approx(entries[2]["cost_usd"])


async def test_first_valid_takes_the_first_valid_answer_and_cancels_the_rest(tmp_path: Path, mock_root: str) -> None:
    gateway = load_gateway(write(tmp_path, config("""
        compare:
          strategy: fanout
          merge: first_valid
          targets:
            - {provider: wire, model: mock-fault-empty}
            - {provider: medium, model: m-medium}
            - {provider: slow, model: m-slow}
        """, root=mock_root)))
    started = time.perf_counter()
    try:
        answer = await gateway.call_tool("judge", {"text": "the soup was cold"})
    finally:
        await gateway.aclose()
    assert time.perf_counter() - started < 10  # the 20 s target was cancelled, not awaited
    # the empty answer came first but is not valid against the output schema
    assert answer.routed.target.label == "medium/m-medium"
    assert set(answer.structured) == {"label", "score"}
    outcomes = {a.target: a.outcome for a in answer.routed.attempts}
    assert outcomes == {"wire/mock-fault-empty": "empty", "medium/m-medium": "ok", "slow/m-slow": "cancelled"}


async def test_each_target_has_its_own_timeout(tmp_path: Path) -> None:
    gateway = load_gateway(write(tmp_path, config("""
        compare:
          strategy: fanout
          timeouts: {total_s: 0.3}
          targets:
            - {provider: slow, model: m-slow}
            - {provider: fast, model: m-fast}
        """)))
    try:
        answer = await gateway.call_tool("judge", {"text": "x"})
    finally:
        await gateway.aclose()
    slow, fast = answer.structured["answers"]
    assert fast["ok"] and not slow["ok"]
    assert "total_s=0.3" in slow["error"]


async def test_every_target_failing_is_a_provider_error(tmp_path: Path) -> None:
    gateway = load_gateway(write(tmp_path, config("""
        compare:
          strategy: fanout
          targets:
            - {provider: down, model: a}
            - {provider: down, model: b}
        """)))
    try:
        with pytest.raises(ProviderError, match="scripted outage"):
            await gateway.call_tool("judge", {"text": "x"})
    finally:
        await gateway.aclose()


async def test_fanout_tool_over_mcp_advertises_and_returns_the_answers(stdio_gateway: Any, tmp_path: Path) -> None:
    path = write(tmp_path, config("""
        compare:
          strategy: fanout
          targets:
            - {provider: fast, model: m-fast}
            - {provider: other, model: m-other}
        """))
    async with stdio_gateway(path) as client:
        listed = await client.list_tools()
        result = await client.call_tool("judge", {"text": "fine"})
    tool = next(t for t in listed if t.name == "judge")
    assert not result.is_error
    jsonschema.validate(result.structured_content, tool.output_schema)
    assert [a["model"] for a in result.structured_content["answers"]] == ["m-fast", "m-other"]


@pytest.mark.parametrize("bad, message", [
    ("{merge: all, strategy: fallback}", "'merge' applies only to strategy 'fanout'"),
    ("{strategy: fanout, hedge_after_ms: 50}", "drop 'hedge_after_ms'"),
])
async def test_config_mistakes_are_reported(tmp_path: Path, bad: str, message: str) -> None:
    text = config(f"compare: {{targets: [{{provider: fast, model: m-fast}}], {bad[1:-1]}}}\n")
    with pytest.raises(ConfigError, match=message):
        load_gateway(write(tmp_path, text))


def test_fanout_tool_over_rest_and_openapi(tmp_path: Path) -> None:
    import httpx2

    from tests.conftest import http_gateway

    path = write(tmp_path, config("""
        compare:
          strategy: fanout
          targets:
            - {provider: fast, model: m-fast}
            - {provider: down, model: m-down}
        """))
    with http_gateway(path) as server:
        result = httpx2.post(server.base_url + "/v1/tools/judge", json={"text": "fine"}, timeout=20)
        document = httpx2.get(server.base_url + "/openapi.json", timeout=20).json()
    assert result.status_code == 200
    structured = result.json()["structured"]
    assert [(a["target"], a["ok"]) for a in structured["answers"]] == [("fast/m-fast", True), ("down/m-down", False)]
    schema = document["components"]["schemas"]["judge_result"]["allOf"][1]["properties"]["structured"]
    assert schema["properties"]["answers"]["items"]["required"] == ["target", "provider", "model", "ok"]


async def test_the_example_fanout_tool_compares_three_providers(tmp_path: Path, mock_root: str) -> None:
    import shutil

    from tests.conftest import ROOT

    shutil.copytree(ROOT / "examples" / "prompts", tmp_path / "prompts")
    shutil.copy(ROOT / "examples" / "providers.yaml", tmp_path / "providers.yaml")
    env = {"OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "x", "GEMINI_API_KEY": "x", "MOCK_LLM": mock_root}
    gateway = load_gateway(tmp_path / "providers.yaml", environ=env)
    try:
        answer = await gateway.call_tool("compare_summaries", {"text": "Otters hold hands while they sleep."})
    finally:
        await gateway.aclose()
    entries = answer.structured["answers"]
    assert [e["provider"] for e in entries] == ["openai", "anthropic", "gemini"] and all(e["ok"] for e in entries)
    assert all("Otters hold hands" in e["text"] for e in entries)
