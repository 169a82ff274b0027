"""The routing facts of a call reach the MCP client in `_meta["mcp-gateway/call"]`; a refused budget
is a tool error result, not a crash. Runs `mcp-gateway serve` as a subprocess (both protocol eras)."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.anyio

CONFIG = textwrap.dedent("""
    format: mcp-gateway/1
    providers:
      down: {kind: mock, settings: {fail_with: "HTTP 503 (scripted outage)"}}
      up: {kind: mock}
    models:
      routed:
        targets:
          - {provider: down, model: mock-1}
          - {provider: up, model: mock-1}
        strategy: fallback
    prices:
      up/mock-1: {input: 1, output: 2}
    budgets:
      per_tool: {capped: {usd: 0}}
    tools:
      - name: ask
        description: Ask.
        model: routed
        cache: {ttl_s: 60}
        messages: [{role: user, content: "{{ q }}"}]
        input_schema: {type: object, properties: {q: {type: string}}, required: [q]}
      - name: capped
        description: Has no money.
        model: routed
        messages: [{role: user, content: "{{ q }}"}]
        input_schema: {type: object, properties: {q: {type: string}}, required: [q]}
""")


async def test_routing_facts_and_budget_refusals_over_mcp(stdio_gateway, tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    async with stdio_gateway(path) as client:
        first = await client.call_tool("ask", {"q": "hello routing"})
        second = await client.call_tool("ask", {"q": "hello routing"})
        refused = await client.call_tool("capped", {"q": "hello"})
    assert not first.is_error and not second.is_error
    call = first.meta["mcp-gateway/call"]
    assert call["route"] == "routed" and call["target"] == "up/mock-1" and call["provider"] == "up"
    assert call["attempts"] == 2 and call["other_attempts"] == [{"target": "down/mock-1", "outcome": "other"}]
    usage = call["usage"]
    assert call["cost_usd"] == pytest.approx((usage["input_tokens"] * 1 + usage["output_tokens"] * 2) / 1e6)
    assert call["cache"] == "miss" and call["duration_ms"] > 0
    again = second.meta["mcp-gateway/call"]
    assert again["cache"] == "hit" and again["cost_usd"] == 0 and again["attempts"] == 0
    assert second.content[0].text == first.content[0].text
    assert refused.is_error
    assert refused.content[0].text.startswith("Budget exceeded for tool 'capped': this call may cost up to $")
