"""An answer that fails the tool's output schema is repaired: asked again with the validation errors,
on the same or the next target, every attempt accounted. The real HTTP adapters against the mock LLM
server, whose `off_schema` fault answers `[]` for an object schema."""

from __future__ import annotations

import itertools
import textwrap
from decimal import Decimal

import pytest

from mcp_gateway import _gateway
from mcp_gateway._errors import OutputError, ProviderError
from mcp_gateway.accounting import Price, cost_of
from mcp_gateway.providers import Usage
from tests.routing.fakes import Answer, Fail, Scripted

pytestmark = pytest.mark.anyio

_keys = itertools.count()
SCHEMA = "{type: object, properties: {answer: {type: string}}, required: [answer]}"
PRICE = Price(Decimal(1), Decimal(2), Decimal("0.5"), Decimal(1))


def gateway(tmp_path, root: str, first: str, second: str = "none", repair: str = "",
            route_repair: str = "") -> _gateway.Gateway:
    key = f"repair-{next(_keys)}"
    text = textwrap.dedent(f"""
        format: mcp-gateway/1
        providers:
          one:
            kind: openai
            base_url: {root}/v1
            settings: {{trust_env: false}}
            headers: {{x-mock-fault: "{first}", x-mock-key: "{key}-one"}}
          two:
            kind: anthropic
            base_url: {root}
            settings: {{trust_env: false}}
            headers: {{x-mock-fault: "{second}", x-mock-key: "{key}-two"}}
        models:
          routed:
            targets:
              - {{provider: one, model: mock-gpt}}
              - {{provider: two, model: mock-claude}}
            {route_repair}
        prices:
          one/mock-gpt: {{input: 1, output: 2, cache_read: 0.5, cache_write: 1}}
          two/mock-claude: {{input: 1, output: 2, cache_read: 0.5, cache_write: 1}}
        tools:
          - name: ask
            description: Ask.
            model: routed
            {repair}
            messages: [{{role: user, content: "{{{{ q }}}}"}}]
            input_schema: {{type: object, properties: {{q: {{type: string}}}}, required: [q]}}
            output_schema: {SCHEMA}
    """)
    path = tmp_path / f"{key}.yaml"
    path.write_text(text)
    return _gateway.load_gateway(path, environ={})


async def requests(mock_client) -> list[dict]:
    return (await mock_client.get("/_mock/requests")).json()["requests"]


async def test_a_bad_answer_is_sent_back_with_its_errors_and_the_repair_is_accounted(
        tmp_path, mock_app, mock_root, mock_client):
    mock_app.state.mock_llm.reset()
    gw = gateway(tmp_path, mock_root, first="fail_first=1:off_schema")
    try:
        answer = await gw.call_tool("ask", {"q": "what is up"})
    finally:
        await gw.aclose()
    assert isinstance(answer.structured, dict) and isinstance(answer.structured["answer"], str)
    routed = answer.routed
    assert routed.target.label == "one/mock-gpt" and routed.repairs == 1  # same target first (default)
    assert [a.outcome for a in routed.attempts] == ["output_invalid", "ok"]
    assert "is not of type 'object'" in routed.attempts[0].error
    # Both calls were made and are paid for; usage and cost in _meta add up every attempt.
    sent = await requests(mock_client)
    assert len(sent) == 2
    repair = sent[1]["body"]["messages"]
    assert repair[:-2] == sent[0]["body"]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "[]"}
    assert repair[-1]["role"] == "user" and "$: [] is not of type 'object'" in repair[-1]["content"]
    meta = routed.describe()
    assert meta["attempts"] == 2 and meta["output_repairs"] == 1
    assert meta["other_attempts"][0]["outcome"] == "output_invalid"
    usages = [a.usage for a in routed.attempts]
    assert all(u is not None and u.output_tokens > 0 for u in usages)
    assert meta["usage"]["input_tokens"] == sum(u.input_tokens for u in usages)
    assert meta["usage"]["output_tokens"] == sum(u.output_tokens for u in usages)
    assert routed.cost_usd == sum(cost_of(u, PRICE) for u in usages) > cost_of(usages[1], PRICE)
    totals = gw.router.ledger.tools["ask"]
    assert totals.provider_calls == 2 and totals.cost_usd == routed.cost_usd


async def test_the_repair_can_go_to_the_next_target(tmp_path, mock_app, mock_root, mock_client):
    mock_app.state.mock_llm.reset()
    gw = gateway(tmp_path, mock_root, first="off_schema", repair="output_repair: {attempts: 1, target: next}")
    try:
        answer = await gw.call_tool("ask", {"q": "again"})
    finally:
        await gw.aclose()
    assert answer.routed.target.label == "two/mock-claude"
    assert [(a.target, a.outcome) for a in answer.routed.attempts] == [
        ("one/mock-gpt", "output_invalid"), ("two/mock-claude", "ok")]
    assert [r["path"] for r in await requests(mock_client)] == ["/v1/chat/completions", "/v1/messages"]


async def test_repairs_are_bounded_and_the_error_carries_every_attempt(tmp_path, mock_app, mock_root, mock_client):
    mock_app.state.mock_llm.reset()
    gw = gateway(tmp_path, mock_root, first="off_schema", second="off_schema",
                 route_repair="output_repair: {attempts: 2}")  # the route's setting, as the tool has none
    try:
        with pytest.raises(OutputError) as caught:
            await gw.call_tool("ask", {"q": "never right"})
    finally:
        await gw.aclose()
    assert len(await requests(mock_client)) == 3  # the first answer and two repairs, then no more
    meta = caught.value.call_meta
    assert meta is not None and meta["error"] == {"kind": "output_invalid"}
    assert meta["attempts"] == 3 and meta["output_repairs"] == 2
    assert [a["outcome"] for a in meta["other_attempts"]] == ["output_invalid"] * 3
    assert all("is not of type 'object'" in a["error"] for a in meta["other_attempts"])
    assert meta["cost_usd"] > 0 and meta["usage"]["output_tokens"] > 0


async def test_no_repair_when_switched_off(tmp_path, mock_app, mock_root, mock_client):
    mock_app.state.mock_llm.reset()
    gw = gateway(tmp_path, mock_root, first="off_schema", repair="output_repair: {attempts: 0}",
                 route_repair="output_repair: {attempts: 3}")  # the tool's own setting wins
    try:
        with pytest.raises(OutputError) as caught:
            await gw.call_tool("ask", {"q": "once"})
    finally:
        await gw.aclose()
    assert len(await requests(mock_client)) == 1
    assert caught.value.call_meta["attempts"] == 1 and "output_repairs" not in caught.value.call_meta


async def test_a_repair_that_fails_reports_the_rejected_answer_too(tmp_path):
    """Gateway logic only (a scripted provider): the repair call's own failure carries every attempt."""
    path = tmp_path / "scripted.yaml"
    path.write_text(textwrap.dedent(f"""
        format: mcp-gateway/1
        providers: {{local: {{kind: mock}}}}
        models: {{m: {{provider: local, model: mock-1}}}}
        prices: {{local/mock-1: {{input: 1, output: 2}}}}
        tools:
          - name: ask
            description: Ask.
            model: m
            messages: [{{role: user, content: "{{{{ q }}}}"}}]
            input_schema: {{type: object, properties: {{q: {{type: string}}}}}}
            output_schema: {SCHEMA}
    """))
    gw = _gateway.load_gateway(path, environ={})
    gw.router.route("m").targets[0].provider = Scripted(
        "local", Answer(text='{"wrong": 1}', usage=Usage(10, 5)), Fail("auth", retryable=False, status=401))
    try:
        with pytest.raises(ProviderError) as caught:
            await gw.call_tool("ask", {"q": "x"})
    finally:
        await gw.aclose()
    meta = caught.value.call_meta
    assert meta["attempts"] == 2 and meta["output_repairs"] == 1 and meta["error"]["kind"] == "auth"
    assert [a["outcome"] for a in meta["other_attempts"]] == ["output_invalid", "auth"]
    assert "'answer' is a required property" in meta["other_attempts"][0]["error"]
    assert meta["usage"]["input_tokens"] == 10 and meta["cost_usd"] == pytest.approx((10 * 1 + 5 * 2) / 1e6)
