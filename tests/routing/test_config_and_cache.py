"""Routes, prices, budgets and the response cache as configured in YAML, through `load_gateway`."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import anyio
import pytest

from mcp_gateway import _gateway
from mcp_gateway._errors import ConfigError, OutputError
from mcp_gateway.accounting import BudgetExceededError
from mcp_gateway.cache import MemoryCache, entry_key, request_digest
from mcp_gateway.config._models import ModelConfig
from mcp_gateway.providers import Completion, Message, Usage
from tests.redis_server import RedisServer
from tests.routing.fakes import Answer, Clock, Scripted

pytestmark = pytest.mark.anyio

HEAD = "format: mcp-gateway/1\n"


def write(tmp_path, body: str):
    path = tmp_path / "gateway.yaml"
    path.write_text(HEAD + textwrap.dedent(body))
    return path


def load(tmp_path, body: str, environ=None):
    return _gateway.load_gateway(write(tmp_path, body), environ=environ or {})


def issues_of(tmp_path, body: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, body)
    return [f"{i.path}: {i.message}" for i in caught.value.issues]


ROUTE = """
providers:
  first: {kind: mock}
  second: {kind: mock, settings: {latency_ms: 1}}
models:
  smart:
    params: {temperature: 0.2}
    targets:
      - {provider: first, model: mock-1, params: {max_tokens: 50}}
      - {provider: second, model: mock-2, weight: 3}
    strategy: weighted
    retry: {attempts: 2, base_delay_ms: 50, max_delay_ms: 400, max_retry_after_s: 3}
    timeouts: {first_token_s: 5, total_s: 30}
    breaker: {failures: 3, cooldown_s: 20}
    hedge_after_ms: 750
tools:
  - name: ask
    description: Ask.
    model: smart
    messages: [{role: user, content: "{{ q }}"}]
    input_schema: {type: object, properties: {q: {type: string}}, required: [q]}
"""


async def test_a_route_of_targets_from_yaml(tmp_path):
    gateway = load(tmp_path, ROUTE)
    route = gateway.router.route("smart")
    first, second = route.targets
    assert (first.label, second.label) == ("first/mock-1", "second/mock-2")
    assert first.params == {"temperature": 0.2, "max_tokens": 50} and second.params == {"temperature": 0.2}
    assert second.weight == 3 and route.strategy == "weighted"
    assert (route.retry.attempts, route.retry.base_delay_s, route.retry.max_delay_s,
            route.retry.max_retry_after_s) == (2, 0.05, 0.4, 3)
    assert (route.first_token_s, route.total_s, route.hedge_after_s) == (5, 30, 0.75)
    assert first.breaker.failures == 3 and first.breaker is not second.breaker
    assert first.price is not None and first.price.output == 0  # the mock kind is free
    answer = await gateway.call_tool("ask", {"q": "hi"})
    assert answer.routed.target in route.targets and answer.routed.cost_usd == 0
    await gateway.aclose()


def test_normalised_model_config():
    single = ModelConfig.model_validate({"provider": "p", "model": "m"})
    routed = ModelConfig.model_validate({"targets": [{"provider": "a", "model": "x"}, {"provider": "b", "model": "y"}]})
    assert [t.provider for t in single.all_targets()] == ["p"] and single.provider_refs() == [(("provider",), "p")]
    assert (routed.provider, routed.model) == ("a", "x")  # the primary target, for older readers
    assert routed.provider_refs()[1] == (("targets", 1, "provider"), "b")


def test_route_config_errors_are_located(tmp_path):
    tool = "tools: [{name: t, description: d, model: m, messages: [{role: user, content: hi}]}]\n"
    both = issues_of(tmp_path, "providers: {p: {kind: mock}}\nmodels:\n  m: {provider: p, model: x, "
                     "targets: [{provider: p, model: y}]}\n" + tool)
    assert both == ["models.m: give either 'provider' and 'model', or 'targets', not both"]
    unknown = issues_of(tmp_path, "providers: {p: {kind: mock}}\nmodels:\n  m:\n    targets:\n"
                        "      - {provider: p, model: x}\n      - {provider: q, model: y}\n" + tool)
    assert unknown == ["models.m.targets[1].provider: unknown provider 'q' (defined: p)"]
    bad = issues_of(tmp_path, "providers: {p: {kind: mock}}\nmodels:\n  m: {targets: [{provider: p, model: x, "
                    "weight: -1}], strategy: fastest, hedge_after_ms: 0}\n" + tool)
    assert len(bad) == 3 and any("strategy" in i for i in bad) and any("weight" in i for i in bad)


def test_budget_and_cache_config_errors(tmp_path):
    body = """
        providers: {p: {kind: openai, base_url: "http://127.0.0.1:9/v1"}}
        models: {m: {provider: p, model: unpriced-model}}
        budgets: {per_tool: {ask: {usd: 1}, aks: {usd: 1}}}
        response_cache: {store: redis}
        tools:
          - {name: ask, description: d, model: m, messages: [{role: user, content: hi}], cache: {ttl_s: 5}}
    """
    found = issues_of(tmp_path, body)
    assert "budgets.per_tool.aks: unknown tool 'aks'; did you mean 'ask'?" in found
    assert any(i.startswith("models.m.model: no price is known for model 'unpriced-model', and tool 'ask' has a "
                            "budget") for i in found)
    assert "response_cache.url: the redis store needs 'url', such as redis://127.0.0.1:6379/0" in found


PRICED = """
providers:
  local: {kind: mock, settings: {latency_ms: 20}}
models:
  m: {provider: local, model: mock-1}
prices:
  mock-1: {input: 0, output: 1000}
budgets:
  per_tool: {ask: {usd: 0.05}}
  per_session: {usd: 100}
tools:
  - name: ask
    description: Ask.
    model: m
    params: {max_tokens: 5}
    messages: [{role: user, content: "Tell me a long story about {{ q }}"}]
    input_schema: {type: object, properties: {q: {type: string}}, required: [q]}
"""


async def test_prices_from_yaml_and_the_budget_race_through_the_gateway(tmp_path):
    gateway = load(tmp_path, PRICED)
    assert gateway.router.route("m").targets[0].price.output == 1000
    results: list[object] = []

    async def one(i: int) -> None:
        try:
            results.append(await gateway.call_tool("ask", {"q": f"dragons {i}"}))
        except BudgetExceededError as exc:
            results.append(exc)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as group:
            for i in range(100):
                group.start_soon(one, i)
    answers = [r for r in results if not isinstance(r, Exception)]
    refusals = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(answers) == 10 and len(refusals) == 90
    assert all(a.completion.usage.output_tokens == 5 and a.routed.cost_usd == Decimal("0.005") for a in answers)
    assert "Budget exceeded for tool 'ask'" in str(refusals[0])
    assert gateway.router.ledger.tools["ask"].cost_usd == Decimal("0.05")
    await gateway.aclose()


# -- cache ----------------------------------------------------------------------------------------


def test_cache_keys_are_stable_and_cover_everything_that_decides_the_answer():
    messages = (Message("system", "s"), Message("user", "u"))
    digest = request_digest(messages, {"type": "object"})
    key = entry_key(digest, provider="p", kind="openai", model="m", params={"a": 1, "b": 2})
    assert key == entry_key(request_digest(messages, {"type": "object"}), provider="p", kind="openai", model="m",
                            params={"b": 2, "a": 1})
    different = [
        entry_key(digest, provider="q", kind="openai", model="m", params={"a": 1, "b": 2}),
        entry_key(digest, provider="p", kind="openai", model="n", params={"a": 1, "b": 2}),
        entry_key(digest, provider="p", kind="openai", model="m", params={"a": 1, "b": 3}),
        entry_key(request_digest(messages, None), provider="p", kind="openai", model="m", params={"a": 1, "b": 2}),
        entry_key(request_digest((Message("user", "s"), Message("user", "u")), {"type": "object"}),
                  provider="p", kind="openai", model="m", params={"a": 1, "b": 2}),
    ]
    assert len({key, *different}) == 6


async def test_memory_cache_expires_and_evicts_the_least_recently_used():
    clock = Clock()
    cache = MemoryCache(2, clock=clock)
    answer = Completion("x", "stop", Usage(1, 1), "m")
    await cache.put("a", answer, 10)
    await cache.put("b", answer, 100)
    assert await cache.get_many(["a"]) == [answer]  # a is now the most recently used
    await cache.put("c", answer, 100)
    assert await cache.get_many(["a", "b", "c"]) == [answer, None, answer]
    clock.advance(11)
    assert await cache.get_many(["a", "c"]) == [None, answer] and len(cache) == 1


CACHED = """
providers:
  local: {kind: mock}
models:
  m: {provider: local, model: mock-1}
tools:
  - name: ask
    description: Ask.
    model: m
    cache: {ttl_s: 60}
    messages: [{role: user, content: "{{ q }}"}]
    input_schema: {type: object, properties: {q: {type: string}}, required: [q]}
    output_schema: {type: object, properties: {answer: {type: string}}, required: [answer]}
  - name: plain
    description: Not cached.
    model: m
    messages: [{role: user, content: "{{ q }}"}]
    input_schema: {type: object, properties: {q: {type: string}}, required: [q]}
"""


async def test_cache_hits_are_marked_free_and_skip_the_provider(tmp_path):
    gateway = load(tmp_path, CACHED)
    target = gateway.router.route("m").targets[0]
    provider = target.provider = Scripted("local", Answer(text='{"answer": "42"}', usage=Usage(30, 7)))
    first = await gateway.call_tool("ask", {"q": "meaning"})
    second = await gateway.call_tool("ask", {"q": "meaning"})
    other = await gateway.call_tool("ask", {"q": "something else"})
    assert provider.calls == 2
    assert first.routed.cache == "miss" and second.routed.cache == "hit" and other.routed.cache == "miss"
    assert second.structured == {"answer": "42"} and second.routed.cost_usd == 0
    assert second.completion.usage == Usage() and second.routed.attempts == ()
    meta = second.routed.describe()
    assert meta["cache"] == "hit" and meta["cost_usd"] == 0 and meta["attempts"] == 0
    streamed: list[str] = []

    async def on_text(piece: str) -> None:
        streamed.append(piece)

    await gateway.call_tool("ask", {"q": "meaning"}, on_text=on_text)
    assert streamed == ['{"answer": "42"}']  # a hit still streams its text
    await gateway.call_tool("plain", {"q": "meaning"})
    await gateway.call_tool("plain", {"q": "meaning"})
    assert provider.calls == 4  # a tool that did not opt in is never cached
    assert gateway.router.ledger.tools["ask"].cache_hits == 2
    await gateway.aclose()


async def test_an_answer_that_fails_the_output_schema_is_not_cached(tmp_path):
    body = CACHED.replace("    cache: {ttl_s: 60}\n", "    cache: {ttl_s: 60}\n    output_repair: {attempts: 0}\n", 1)
    gateway = load(tmp_path, body)
    provider = Scripted("local", Answer(text='{"wrong": 1}'), Answer(text='{"answer": "ok"}'))
    gateway.router.route("m").targets[0].provider = provider
    with pytest.raises(OutputError):
        await gateway.call_tool("ask", {"q": "x"})
    assert (await gateway.call_tool("ask", {"q": "x"})).structured == {"answer": "ok"}
    assert (await gateway.call_tool("ask", {"q": "x"})).routed.cache == "hit" and provider.calls == 2
    await gateway.aclose()


async def test_a_repaired_answer_fills_the_cache_entry_of_the_original_request(tmp_path):
    gateway = load(tmp_path, CACHED)  # default: one repair
    provider = Scripted("local", Answer(text='{"wrong": 1}'), Answer(text='{"answer": "ok"}'))
    gateway.router.route("m").targets[0].provider = provider
    first = await gateway.call_tool("ask", {"q": "x"})
    assert first.structured == {"answer": "ok"} and first.routed.repairs == 1 and provider.calls == 2
    assert [a.outcome for a in first.routed.attempts] == ["output_invalid", "ok"]
    again = await gateway.call_tool("ask", {"q": "x"})
    assert again.routed.cache == "hit" and again.structured == {"answer": "ok"} and provider.calls == 2
    await gateway.aclose()


async def test_redis_cache_backend_shared_by_two_gateways(tmp_path):
    with RedisServer(tmp_path / "redis") as server:
        body = CACHED + f"response_cache: {{store: redis, url: '{server.url}', prefix: 'test:'}}\n"
        one, two = load(tmp_path, body), load(tmp_path, body)
        try:
            p1 = one.router.route("m").targets[0].provider = Scripted("local", Answer(text='{"answer": "r"}'))
            p2 = two.router.route("m").targets[0].provider = Scripted("local", Answer(text='{"answer": "other"}'))
            with anyio.fail_after(30):
                assert (await one.call_tool("ask", {"q": "shared"})).routed.cache == "miss"
                answer = await two.call_tool("ask", {"q": "shared"})
            assert answer.routed.cache == "hit" and answer.structured == {"answer": "r"}
            assert (p1.calls, p2.calls) == (1, 0)
            server.stop(kill=True)  # a Redis that is down is a miss, never a failed call
            with anyio.fail_after(10):
                assert (await two.call_tool("ask", {"q": "shared"})).routed.cache == "miss"
            assert p2.calls == 1
        finally:
            await one.aclose()
            await two.aclose()
