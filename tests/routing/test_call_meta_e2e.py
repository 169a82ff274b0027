"""The routing facts of a call reach the MCP client in `_meta["mcp-gateway/call"]`, for a failed call
too (route, every attempt and its cause, cost), and the audit log; a refused budget is a tool error
result, not a crash. Runs `mcp-gateway serve` as a subprocess (both protocol eras)."""

from __future__ import annotations

import json
import textwrap

import anyio
import pytest

pytestmark = pytest.mark.anyio

CONFIG = textwrap.dedent("""
    format: mcp-gateway/1
    providers:
      down: {kind: mock, settings: {fail_with: "HTTP 503 (scripted outage)"}}
      up: {kind: mock}
      also_down: {kind: mock, settings: {fail_with: "HTTP 500 (the other outage)"}}
    models:
      routed:
        targets:
          - {provider: down, model: mock-1}
          - {provider: up, model: mock-1}
        strategy: fallback
      broken:
        targets:
          - {provider: down, model: mock-1}
          - {provider: also_down, model: mock-2}
        retry: {attempts: 2, base_delay_ms: 1}
    prices:
      up/mock-1: {input: 1, output: 2}
    budgets:
      per_tool: {capped: {usd: 0}}
    audit: {path: audit.jsonl}
    tools:
      - name: ask
        description: Ask.
        model: routed
        cache: {ttl_s: 60}
        messages: [{role: user, content: "{{ q }}"}]
        input_schema: {type: object, properties: {q: {type: string}}, required: [q]}
      - name: doomed
        description: Every target is down.
        model: broken
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
        failed = await client.call_tool("doomed", {"q": "hello"})
    assert not first.is_error and not second.is_error
    call = first.meta["mcp-gateway/call"]
    assert call["route"] == "routed" and call["target"] == "up/mock-1" and call["provider"] == "up"
    assert call["attempts"] == 2 and call["other_attempts"] == [
        {"target": "down/mock-1", "outcome": "other", "error": "HTTP 503 (scripted outage)"}]
    usage = call["usage"]
    assert call["cost_usd"] == pytest.approx((usage["input_tokens"] * 1 + usage["output_tokens"] * 2) / 1e6)
    assert call["cache"] == "miss" and call["duration_ms"] > 0
    again = second.meta["mcp-gateway/call"]
    assert again["cache"] == "hit" and again["cost_usd"] == 0 and again["attempts"] == 0
    assert second.content[0].text == first.content[0].text
    assert refused.is_error
    assert refused.content[0].text.startswith("Budget exceeded for tool 'capped': this call may cost up to $")
    assert refused.meta["mcp-gateway/call"]["error"] == {"kind": "budget", "scope": "tool 'capped'"}
    # `down` is a free mock model (fits a $0 budget) and failed; `up` was refused before any call
    assert refused.meta["mcp-gateway/call"]["attempts"] == 1
    assert refused.meta["mcp-gateway/call"]["other_attempts"][0]["target"] == "down/mock-1"

    # A failed call says why, in the shape of a success: the route, each attempt and its cause.
    assert failed.is_error and "HTTP 500 (the other outage)" in failed.content[0].text
    why = failed.meta["mcp-gateway/call"]
    assert why["route"] == "broken" and why["attempts"] == 2  # a failure of kind `other` is not retried
    assert why["target"] == "also_down/mock-2" and why["provider"] == "also_down" and why["model"] == "mock-2"
    assert why["error"] == {"kind": "other", "retryable": False}
    assert why["other_attempts"] == [
        {"target": "down/mock-1", "outcome": "other", "error": "HTTP 503 (scripted outage)"},
        {"target": "also_down/mock-2", "outcome": "other", "error": "HTTP 500 (the other outage)"},
    ]
    assert why["finish_reason"] is None and why["usage"]["input_tokens"] == 0

    # ... and the audit log records the same facts for the failed call.
    audit = tmp_path / "audit.jsonl"
    with anyio.fail_after(10):  # written off the call path; the server drains it when it stops
        while not audit.exists() or not any(json.loads(line)["target"] == "doomed"
                                            for line in audit.read_text().splitlines()):
            await anyio.sleep(0.05)
    event = next(e for e in map(json.loads, audit.read_text().splitlines()) if e["target"] == "doomed")
    assert event["outcome"] == "error" and event["call"] == why
