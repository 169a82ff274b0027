"""Fault classes end to end: the real HTTP adapters against the wire-accurate mock LLM server.

Faults are injected per target with the provider's `headers: {x-mock-fault: ...}`; `fail_first`
counts per `x-mock-key`, so every test uses keys of its own.
"""

from __future__ import annotations

import itertools
import math
import textwrap
import time
from decimal import Decimal
from typing import Any

import anyio
import httpx2
import pytest

from mcp_gateway import _gateway
from mcp_gateway._errors import ProviderError
from mcp_gateway.accounting import BudgetExceededError, Budgets, Price, cost_of
from mcp_gateway.config._models import BudgetsConfig
from mcp_gateway.providers import Message, Usage, provider_kinds
from mcp_gateway.routing import Breaker, RetryPolicy, Route, Router, Target
from servers.mock_llm import answer_text, estimate_tokens
from tests.providers.support import base_url_for
from tests.routing.fakes import Clock

pytestmark = pytest.mark.anyio

SYSTEM = "Be brief."
MESSAGES = (Message("system", SYSTEM), Message("user", "one two three four five six seven"))
_keys = itertools.count()


class Mock:
    def __init__(self, root: str, client: httpx2.AsyncClient) -> None:
        self.root = root
        self.client = client
        self.built: list[Any] = []

    def provider(self, kind: str = "openai", fault: str | None = None, *, name: str | None = None,
                 key: str | None = None, **settings: Any) -> Any:
        headers = {"x-mock-key": key or f"k{next(_keys)}"}
        if fault:
            headers["x-mock-fault"] = fault
        provider = provider_kinds()[kind](
            name or f"{kind}{next(_keys)}", {"trust_env": False, **settings},
            base_url=base_url_for(kind, self.root), api_key="test-key", headers=headers)
        self.built.append(provider)
        return provider

    async def requests_with(self, key: str) -> int:
        history = (await self.client.get("/_mock/requests")).json()["requests"]
        return sum(1 for r in history if r["headers"].get("x-mock-key") == key)

    async def stats(self) -> dict[str, int]:
        return (await self.client.get("/_mock/stats")).json()


@pytest.fixture
async def mock(mock_app, mock_root, mock_client):
    mock_app.state.mock_llm.reset()
    helper = Mock(mock_root, mock_client)
    yield helper
    for provider in helper.built:
        await provider.aclose()


def router(*providers: Any, model: str = "mock-gpt", price: Price | None = None, **options: Any) -> Router:
    targets = tuple(Target(f"{p.name}/{model}", p, model, {"max_tokens": 64}, price=price,
                           breaker=options.pop("breaker", None) if i == 0 else None)
                    for i, p in enumerate(providers))
    return Router({"r": Route("r", targets, **options)}, {})


async def run(r: Router, *, stream: bool = False, pieces: list[str] | None = None, limit: float = 30,
              **kw: Any):
    received = pieces if pieces is not None else []

    async def on_text(piece: str) -> None:
        received.append(piece)

    with anyio.fail_after(limit):
        return await r.complete("r", MESSAGES, params={}, on_text=on_text if stream else None, **kw)


KINDS = ("openai", "anthropic", "gemini", "ollama")


@pytest.mark.parametrize("kind", KINDS)
async def test_429_retry_after_is_honoured_then_the_call_succeeds(mock, kind):
    provider = mock.provider(kind, "fail_first=1:429+retry_after=0.2", key=f"429-{kind}")
    started = time.monotonic()
    routed = await run(router(provider, retry=RetryPolicy(attempts=2, base_delay_s=0.001)))
    assert time.monotonic() - started >= 0.2
    assert [a.outcome for a in routed.attempts] == ["rate_limit", "ok"] and routed.completion.text
    assert await mock.requests_with(f"429-{kind}") == 2


@pytest.mark.parametrize(("kind", "status"), [("openai", 500), ("openai", 503), ("anthropic", 529),
                                              ("gemini", 503), ("ollama", 500)])
async def test_server_errors_are_retried(mock, kind, status):
    provider = mock.provider(kind, f"fail_first=2:{status}")
    routed = await run(router(provider, retry=RetryPolicy(attempts=3, base_delay_s=0.005)), stream=True)
    expected = "overloaded" if status == 529 else "server"
    assert [a.outcome for a in routed.attempts] == [expected, expected, "ok"]


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
async def test_quota_is_not_retried_and_the_route_falls_back_to_the_second_target(mock, kind):
    broke = mock.provider(kind, "quota", key=f"quota-{kind}")
    backup = mock.provider("openai", name="backup")
    routed = await run(router(broke, backup, retry=RetryPolicy(attempts=5, base_delay_s=0.001)))
    assert routed.target.provider.name == "backup" and await mock.requests_with(f"quota-{kind}") == 1
    assert [a.outcome for a in routed.attempts] == ["quota", "ok"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_an_empty_answer_is_retried_then_fails_over_with_its_usage_costed(mock, stream):
    """A 200 with no content is no success: retried per the route's policy, then the next target."""
    price = Price(Decimal(1), Decimal(2), Decimal("0.1"), Decimal("1.25"))
    hollow = mock.provider("anthropic", "empty", key="hollow")
    backup = mock.provider("openai", name="backup")
    routed = await run(router(hollow, backup, model="mock-claude", price=price,
                              retry=RetryPolicy(attempts=2, base_delay_s=0.001)), stream=stream)
    assert routed.target.provider.name == "backup" and routed.completion.text.startswith("Mock answer")
    assert [a.outcome for a in routed.attempts] == ["empty", "empty", "ok"]
    assert await mock.requests_with("hollow") == 2
    empty = routed.attempts[0]
    assert empty.usage is not None and empty.usage.input_tokens > 0 and empty.usage.output_tokens == 0
    assert empty.cost_usd == cost_of(empty.usage, price) > 0
    assert routed.cost_usd == sum(a.cost_usd for a in routed.attempts) and routed.unknown_cost == 0


async def test_breaker_opens_then_a_half_open_probe_closes_it(mock):
    flaky = mock.provider("openai", "fail_first=2:503", key="flaky")
    backup = mock.provider("anthropic", name="backup")
    clock = Clock()
    r = router(flaky, backup, model="mock-claude", breaker=Breaker(2, 30, clock=clock))
    for _ in range(2):
        assert (await run(r)).target.provider.name == "backup"
    clock.advance(29)  # however long the calls took: only the injected clock counts
    skipped = await run(r)
    assert skipped.skipped == (f"{flaky.name}/mock-claude",) and await mock.requests_with("flaky") == 2
    clock.advance(1)
    probe = await run(r)
    assert probe.target.provider is flaky and r.route("r").targets[0].breaker.state == "closed"
    assert await mock.requests_with("flaky") == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stream_cut_before_any_output_fails_over(mock, kind):
    pieces: list[str] = []
    cut = mock.provider(kind, "cut=0")
    routed = await run(router(cut, mock.provider("openai", name="backup")), stream=True, pieces=pieces)
    assert routed.target.provider.name == "backup" and routed.attempts[0].outcome == "stream"
    assert "".join(pieces) == routed.completion.text


@pytest.mark.parametrize("fault", ["cut=2", "no_end"])
async def test_a_stream_that_dies_after_output_started_is_an_error(mock, fault):
    pieces: list[str] = []
    backup = mock.provider("openai", key="unused-backup")
    with pytest.raises(ProviderError) as caught:
        await run(router(mock.provider("openai", fault), backup, retry=RetryPolicy(attempts=3)),
                  stream=True, pieces=pieces)
    assert caught.value.kind == "stream" and caught.value.output_started and pieces
    assert await mock.requests_with("unused-backup") == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stall_before_the_first_token_times_out_and_fails_over(mock, kind):
    stalled = mock.provider(kind, "first_token_delay=60000")
    routed = await run(router(stalled, mock.provider("openai", name="backup"), first_token_s=2),
                       stream=True, limit=30)
    assert routed.target.provider.name == "backup" and routed.attempts[0].outcome == "timeout"
    with anyio.fail_after(10):  # the stalled request was closed, not left hanging
        while (await mock.stats())["disconnected"] < 1:
            await anyio.sleep(0.02)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_whole_answer_that_is_late_hits_first_token_s_and_fails_over(mock, kind):
    """first_token_s bounds non-streamed calls too (their first byte is the answer)."""
    late = mock.provider(kind, "latency=10000")
    routed = await run(router(late, mock.provider("openai", name="backup"), first_token_s=0.3), limit=3)
    assert routed.target.provider.name == "backup" and routed.attempts[0].outcome == "timeout"
    assert "no answer within first_token_s=0.3" in routed.attempts[0].error


async def test_a_stall_after_output_started_ends_in_an_error(mock):
    # the mock stalls for 300 s after its first chunk; total_s leaves that chunk ample time to arrive
    with pytest.raises(ProviderError) as caught:
        await run(router(mock.provider("openai", "stall"), mock.provider("openai"), total_s=2),
                  stream=True, limit=30)
    assert caught.value.kind == "timeout" and caught.value.output_started


async def test_a_hung_whole_answer_hits_the_total_deadline_and_fails_over(mock):
    routed = await run(router(mock.provider("gemini", "stall"), mock.provider("ollama", name="backup"),
                              total_s=2), limit=30)
    assert routed.target.provider.name == "backup" and routed.attempts[0].outcome == "timeout"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_hedging_a_slow_first_target(mock, stream):
    slow = mock.provider("openai", "latency=60000" if not stream else "first_token_delay=60000")
    fast = mock.provider("anthropic", name="fast")
    # the slow target would take a minute: finishing inside the guard proves it was not waited for
    routed = await run(router(slow, fast, model="mock-claude", hedge_after_s=0.1), stream=stream, limit=30)
    assert routed.target.provider.name == "fast" and routed.hedged
    assert {a.target: a.outcome for a in routed.attempts}[f"{slow.name}/mock-claude"] == "cancelled"
    with anyio.fail_after(10):  # the loser was cancelled: the mock saw its client go away
        while (stats := await mock.stats())["disconnected"] < 1:
            await anyio.sleep(0.02)
    assert stats["disconnected"] == 1 and stats["in_flight"] == 0


def expected_usage(model: str, cached: int = 0, reasoning: int = 0) -> Usage:
    prompt = sum(estimate_tokens(m.content) for m in MESSAGES)
    output = estimate_tokens(answer_text(model, MESSAGES[-1].content)) + reasoning
    return Usage(prompt, output, cache_read_tokens=cached, reasoning_tokens=reasoning)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_cost_is_exact_for_whole_and_streamed_answers_with_cached_tokens(mock, kind, stream):
    price = Price(Decimal("2.5"), Decimal("10"), Decimal("1.25"), Decimal("2.5"))
    cached = 0 if kind == "ollama" else 4  # Ollama reports no cache
    reasoning = 3 if kind in ("openai", "gemini") else 0
    fault = f"cached_tokens={cached},reasoning_tokens={reasoning}"
    routed = await run(router(mock.provider(kind, fault), price=price), stream=stream)
    usage = routed.completion.usage
    want = expected_usage("mock-gpt", cached, reasoning)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == \
        (want.input_tokens, want.output_tokens, want.cache_read_tokens)
    exact = (Decimal(want.input_tokens - cached) * Decimal("2.5") + Decimal(cached) * Decimal("1.25")
             + Decimal(want.output_tokens) * 10) / 1_000_000
    assert routed.cost_usd == exact == cost_of(usage, price) and routed.cost_usd > 0


async def test_the_budget_race_against_real_http(mock):
    price = Price(Decimal(0), Decimal(1000), Decimal(0), Decimal(0))
    provider = mock.provider("openai", "latency=30")
    r = router(provider, price=price)
    r.budgets = Budgets(BudgetsConfig.model_validate({"per_session": {"usd": 0.05}}))
    outcomes: list[str] = []

    async def one() -> None:
        try:
            routed = await r.complete("r", MESSAGES, params={"max_tokens": 5}, session="s1")
            assert routed.completion.usage.output_tokens == 5
            outcomes.append("ok")
        except BudgetExceededError:
            outcomes.append("refused")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for _ in range(100):
                group.start_soon(one)
    assert outcomes.count("ok") == 10 and outcomes.count("refused") == 90
    assert r.ledger.process.cost_usd == Decimal("0.05")
    assert (await mock.stats())["completed"] == 10


async def test_cache_hit_through_the_gateway_and_an_http_adapter(mock, tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent(f"""
        format: mcp-gateway/1
        providers:
          mock: {{kind: anthropic, base_url: "{mock.root}", headers: {{x-mock-key: cache-e2e}}}}
        models: {{m: {{provider: mock, model: mock-claude, params: {{max_tokens: 100}}}}}}
        prices: {{mock-claude: {{input: 3, output: 15}}}}
        tools:
          - name: ask
            description: Ask.
            model: m
            cache: {{ttl_s: 60}}
            messages: [{{role: user, content: "{{{{ q }}}}"}}]
            input_schema: {{type: object, properties: {{q: {{type: string}}}}, required: [q]}}
    """))
    gateway = _gateway.load_gateway(path, environ={})
    try:
        with anyio.fail_after(30):
            first = await gateway.call_tool("ask", {"q": "what is cached"})
            second = await gateway.call_tool("ask", {"q": "what is cached"})
        assert first.routed.cache == "miss" and first.routed.cost_usd > 0
        assert second.routed.cache == "hit" and second.routed.cost_usd == 0 and second.text == first.text
        assert await mock.requests_with("cache-e2e") == 1
        ledger = gateway.router.ledger.tools["ask"]
        assert ledger.calls == 2 and ledger.cache_hits == 1 and ledger.cost_usd == first.routed.cost_usd
    finally:
        await gateway.aclose()


def test_expected_usage_helper_matches_the_mock_estimate():
    assert expected_usage("mock-gpt").input_tokens == math.ceil(len(SYSTEM) / 4) + math.ceil(
        len(MESSAGES[-1].content) / 4)
