"""Prices, exact cost, the ledger and budgets (reserve the worst case, settle to the actual)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from importlib import resources

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_gateway.accounting import (
    BudgetExceededError,
    Budgets,
    Charge,
    Ledger,
    Price,
    PriceTable,
    Totals,
    cost_of,
    price_warning,
)
from mcp_gateway.config._models import BudgetsConfig
from mcp_gateway.providers import Message, Usage
from mcp_gateway.routing import Attempt, RouteError
from mcp_gateway.routing._router import answered_cost
from tests.routing.fakes import Answer, Clock, Die, Fail, Hang, Scripted, router_for, target

pytestmark = pytest.mark.anyio

MESSAGES = (Message("user", "hello"),)


# -- prices ---------------------------------------------------------------------------------------


def test_the_bundled_table_is_dated_complete_and_in_usd_per_million():
    raw = json.loads(resources.files("mcp_gateway.accounting").joinpath("prices.json").read_text())
    assert raw["as_of"] and "per 1,000,000 tokens" in raw["unit"] and "check" in raw["note"]
    providers = {e["provider"] for e in raw["models"].values()}
    assert {"openai", "anthropic", "gemini", "mistral", "deepseek", "groq", "mock"} <= providers
    assert len(raw["models"]) >= 36
    for name, entry in raw["models"].items():
        assert {"input", "output", "cache_read", "cache_write", "as_of"} <= entry.keys(), name
        assert entry["cache_read"] <= entry["input"] <= entry["output"] or entry["provider"] in ("mock", "mistral")
    table = PriceTable.bundled()
    assert table.lookup("gpt-4o-mini") == Price(Decimal("0.15"), Decimal("0.6"), Decimal("0.075"),
                                                Decimal("0.15"), "bundled", raw["as_of"], "secondary")
    assert table.lookup("claude-sonnet-4-20250514").cache_write == Decimal("3.75")


def test_every_bundled_price_says_when_and_how_it_was_checked():
    raw = json.loads(resources.files("mcp_gateway.accounting").joinpath("prices.json").read_text())
    for name, entry in raw["models"].items():
        assert entry["status"] in ("verified", "secondary", "unverified", "fixed"), name
        date.fromisoformat(entry["as_of"])
        if entry["status"] in ("verified", "secondary"):
            assert entry["as_of"] == raw["as_of"] and entry["source"].startswith("https://"), name
        if entry["status"] != "fixed":
            assert entry.get("note"), name  # what the check found (or why it could not confirm)
    assert raw["models"]["claude-3-haiku-20240307"]["status"] == "verified"
    assert raw["models"]["mistral-large-latest"]["status"] == "unverified"


def test_unknown_unverified_and_stale_prices_are_warned_about():
    table = PriceTable.bundled()
    today = date(2026, 12, 6)
    assert "no price is known" in price_warning(table.lookup("no-such-model"), today)
    unverified = price_warning(table.lookup("mistral-large-latest"), today)
    assert "unverified" in unverified and "2025-06-01" in unverified
    verified = table.lookup("claude-3-haiku-20240307")
    assert price_warning(verified, today) is None
    assert price_warning(verified, date(2027, 6, 3)) is None  # 179 days
    stale = price_warning(verified, date(2027, 6, 5))
    assert "stale" in stale and "2026-12-06" in stale and "181 days" in stale
    assert price_warning(table.lookup("anything", kind="mock"), date(2099, 1, 1)) is None  # free by definition
    config = table.with_overrides({"mistral-large-latest": {"input": 2, "output": 6}})
    assert price_warning(config.lookup("mistral-large-latest"), today) is None  # the operator's own price


def test_unknown_models_have_no_price_and_mock_models_are_explicitly_free():
    table = PriceTable.bundled()
    assert table.lookup("no-such-model") is None
    assert table.lookup("no-such-model", kind="openai") is None
    free = table.lookup("anything", kind="mock")
    assert free is not None and free.input == free.output == 0
    assert table.lookup("mock-gpt").output == 0  # the mock LLM server's models, on any adapter
    assert cost_of(Usage(1000, 1000), None) is None
    assert cost_of(Usage(1000, 1000), free) == 0


def test_config_prices_override_and_extend_the_table():
    table = PriceTable.bundled().with_overrides({
        "gpt-4o": {"input": 1, "output": 2},
        "local/gpt-4o": {"input": 0, "output": 0},
        "my-model": {"input": 0.3, "output": 0.9, "cache_read": 0.1},
    })
    assert table.lookup("gpt-4o").input == 1 and table.lookup("gpt-4o").source == "config"
    assert table.lookup("gpt-4o", provider="local").input == 0
    assert table.lookup("gpt-4o", provider="openai").input == 1
    mine = table.lookup("my-model")
    assert (mine.input, mine.cache_read, mine.cache_write) == (Decimal("0.3"), Decimal("0.1"), Decimal("0.3"))


def test_cost_is_exact_and_bills_cached_tokens_at_their_own_prices():
    price = Price(Decimal("3"), Decimal("15"), Decimal("0.30"), Decimal("3.75"))
    # Anthropic-style: 1000 input in all, of which 600 read from cache and 100 written to it.
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=600, cache_write_tokens=100)
    expected = (Decimal(300) * 3 + Decimal(600) * Decimal("0.30") + Decimal(100) * Decimal("3.75")
                + Decimal(200) * 15) / 1_000_000
    assert cost_of(usage, price) == expected == Decimal("0.004455")
    # 0.1 + 0.2 style float drift cannot happen: a million tiny calls add up exactly.
    tiny = cost_of(Usage(1, 0), Price(Decimal("0.1"), Decimal(0), Decimal(0), Decimal(0)))
    assert sum([tiny] * 1000, Decimal(0)) == Decimal("0.0001")


# -- ledger ---------------------------------------------------------------------------------------


async def test_the_ledger_totals_every_call_per_tool_route_target_and_process():
    price = Price(Decimal(2), Decimal(8), Decimal(1), Decimal(2))
    a = Scripted("a", Fail("server"), Answer(usage=Usage(100, 10)))
    b = Scripted("b", Answer(usage=Usage(1000, 100, cache_read_tokens=500)))
    router = router_for(target(a, price=price), target(b, price=price))
    first = await router.complete("r", MESSAGES, params={}, tool="t1")
    second = await router.complete("r", MESSAGES, params={}, tool="t2")
    assert first.cost_usd == Decimal("0.0023")  # b: 500 x 2 + 500 x 1 + 100 x 8, per million
    assert second.cost_usd == Decimal("0.00028")  # a: 100 x 2 + 10 x 8
    ledger = router.ledger
    assert ledger.process.calls == 2 and ledger.process.provider_calls == 3
    assert ledger.process.cost_usd == Decimal("0.00258") and ledger.process.unknown_cost == 0
    assert ledger.tools["t1"].cost_usd == Decimal("0.0023") and ledger.tools["t2"].provider_calls == 1
    assert ledger.routes["r"].input_tokens == 1100 and ledger.routes["r"].cache_read_tokens == 500
    assert ledger.targets["a/m"].provider_calls == 2 and ledger.targets["b/m"].calls == 0
    snapshot = ledger.snapshot()
    assert snapshot["process"]["cost_usd"] == "0.00258" and set(snapshot) == {"process", "tools", "routes", "targets", "keys"}


async def test_unpriced_models_report_unknown_cost_never_zero():
    router = router_for(target(Scripted("a", Answer(usage=Usage(100, 10)))))  # no price
    routed = await router.complete("r", MESSAGES, params={})
    assert routed.cost_usd is None and routed.describe()["cost_usd"] is None
    assert router.ledger.process.unknown_cost == 1 and router.ledger.process.cost_usd == 0


async def test_a_stream_cut_mid_way_is_unknown_cost_but_a_refused_request_is_free():
    price = Price(Decimal(1), Decimal(1), Decimal(1), Decimal(1))
    cut, refused, ok = Scripted("cut", Die(())), Scripted("refused", Fail("rate_limit", status=429)), Scripted("ok")
    routed = await router_for(target(cut, price=price), target(refused, price=price), target(ok, price=price)) \
        .complete("r", MESSAGES, params={}, on_text=_sink)
    costs = {a.target: a.cost_usd for a in routed.attempts}
    assert costs["cut/m"] is None and costs["refused/m"] == 0 and routed.unknown_cost == 1


async def _sink(piece: str) -> None:
    return None


# -- budgets --------------------------------------------------------------------------------------


def _budgets(clock=None, **config) -> Budgets:
    return Budgets(BudgetsConfig.model_validate(config), **({"clock": clock} if clock else {}))


def test_reserve_settle_and_release():
    budgets = _budgets(per_tool={"t": {"usd": 1.0}})
    first = budgets.reserve("t", None, Decimal("0.6"))
    with pytest.raises(BudgetExceededError) as caught:
        budgets.reserve("t", None, Decimal("0.5"))
    assert str(caught.value) == "Budget exceeded for tool 't': this call may cost up to $0.5, and $0.4 of $1 is left."
    first.settle(Decimal("0.1"))  # the actual cost: the rest is released
    second = budgets.reserve("t", None, Decimal("0.5"))
    assert budgets.remaining("t") == Decimal("0.4")
    second.settle(None)  # unknown cost: the whole hold is charged
    assert budgets.remaining("t") == Decimal("0.4")
    first.settle(Decimal(5))  # settling twice changes nothing
    assert budgets.remaining("t") == Decimal("0.4")
    assert budgets.reserve("other", None, Decimal(100)).amount == 100  # no budget for that tool


def test_every_applicable_budget_must_fit_and_a_refusal_holds_nothing():
    budgets = _budgets(total={"usd": 10}, per_tool={"t": {"usd": 5}}, per_session={"usd": 1})
    budgets.reserve("t", "s1", Decimal("0.9")).settle(Decimal("0.9"))
    with pytest.raises(BudgetExceededError, match="session 's1'"):
        budgets.reserve("t", "s1", Decimal("0.2"))
    assert budgets.remaining("t") == Decimal("4.1")  # the refused call reserved nothing anywhere
    budgets.reserve("t", "s2", Decimal("0.9")).settle(Decimal("0.9"))  # another session has its own
    assert budgets.remaining() == Decimal("8.2")


def test_a_window_forgets_old_spending():
    clock = Clock()
    budgets = _budgets(clock, per_tool={"t": {"usd": 1, "window_s": 60}})
    budgets.reserve("t", None, Decimal(1)).settle(Decimal(1))
    with pytest.raises(BudgetExceededError, match=r"per 60 s"):
        budgets.reserve("t", None, Decimal("0.01"))
    clock.advance(61)
    budgets.reserve("t", None, Decimal(1))


async def test_100_concurrent_calls_against_a_budget_for_exactly_10():
    """Each call's worst case equals its actual cost here (max_tokens output, free input)."""
    price = Price(Decimal(0), Decimal(1000), Decimal(0), Decimal(0))
    provider = Scripted("a", Answer(delay=0.02, usage=Usage(input_tokens=50, output_tokens=5)))
    router = router_for(target(provider, price=price))
    router.budgets = _budgets(per_tool={"t": {"usd": 0.05}})  # 10 x 5 tokens x $1000/M
    outcomes: list[str] = []

    async def one() -> None:
        try:
            await router.complete("r", MESSAGES, params={"max_tokens": 5}, tool="t")
            outcomes.append("ok")
        except BudgetExceededError:
            outcomes.append("refused")

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for _ in range(100):
                group.start_soon(one)
    assert outcomes.count("ok") == 10 and outcomes.count("refused") == 90 and provider.calls == 10
    assert router.budgets.remaining("t") == 0 and router.ledger.tools["t"].cost_usd == Decimal("0.05")
    with pytest.raises(BudgetExceededError):  # and no later call gets through either
        await router.complete("r", MESSAGES, params={"max_tokens": 5}, tool="t")


async def test_settling_releases_the_unused_part_of_the_reservation():
    price = Price(Decimal(0), Decimal(1000), Decimal(0), Decimal(0))
    provider = Scripted("a", Answer(usage=Usage(input_tokens=5, output_tokens=1)))
    router = router_for(target(provider, price=price))
    router.budgets = _budgets(per_tool={"t": {"usd": 0.05}})
    done = 0
    with pytest.raises(BudgetExceededError):
        for _ in range(100):
            await router.complete("r", MESSAGES, params={"max_tokens": 5}, tool="t")
            done += 1
    assert done == 46  # holds 5 tokens' worth each time but spends 1: 45 spent + 5 held fit, the 47th does not


async def test_budgeted_calls_get_an_output_cap_and_unpriced_models_are_refused():
    provider = Scripted("a")
    router = router_for(target(provider, price=Price(Decimal(1), Decimal(1), Decimal(1), Decimal(1))))
    router.budgets = _budgets(per_session={"usd": 1}, max_tokens=321)
    await router.complete("r", MESSAGES, params={}, session="s")
    assert provider.requests[-1].params["max_tokens"] == 321
    await router.complete("r", MESSAGES, params={})  # no session: no budget applies, no cap added
    assert "max_tokens" not in provider.requests[-1].params
    unpriced = router_for(target(Scripted("b")))
    unpriced.budgets = router.budgets
    with pytest.raises(BudgetExceededError, match="has no price"):
        await unpriced.complete("r", MESSAGES, params={}, session="s")


async def test_a_budget_refusal_mid_failover_falls_through_to_cheaper_targets_and_failures_settle_free():
    pricey = Price(Decimal(0), Decimal(100_000), Decimal(0), Decimal(0))
    cheap = Price(Decimal(0), Decimal(1), Decimal(0), Decimal(0))
    a, b, c = Scripted("a", Fail("server")), Scripted("b"), Scripted("c")
    router = router_for(target(a, price=cheap), target(b, price=pricey), target(c, price=cheap))
    router.budgets = _budgets(per_tool={"t": {"usd": 0.01}})
    routed = await router.complete("r", MESSAGES, params={"max_tokens": 10}, tool="t")
    assert routed.target.provider.name == "c" and b.calls == 0
    assert router.budgets.remaining("t") == Decimal("0.01") - Decimal("0.00002")


async def test_a_cancelled_call_keeps_its_worst_case_charged():
    price = Price(Decimal(0), Decimal(1000), Decimal(0), Decimal(0))
    router = router_for(target(Scripted("a", Hang()), price=price))
    router.budgets = _budgets(per_tool={"t": {"usd": 1}})
    with anyio.move_on_after(0.05):
        await router.complete("r", MESSAGES, params={"max_tokens": 100}, tool="t")
    assert router.budgets.remaining("t") == Decimal("0.9")
    with pytest.raises(RouteError):  # and an error before the call was sent is free
        router2 = router_for(target(Scripted("b", Fail("rate_limit", status=429)), price=price))
        router2.budgets = router.budgets
        await router2.complete("r", MESSAGES, params={"max_tokens": 100}, tool="t")
    assert router.budgets.remaining("t") == Decimal("0.9")


def test_ledger_is_empty_at_start():
    assert Ledger().snapshot()["process"]["calls"] == 0


async def test_ledger_totals_per_dimension_and_window_match_each_call_added_up():
    now = [1_000_000.0]
    ledger = Ledger(clock=lambda: now[0])
    ok, failed = Usage(10, 5), Usage(3, 0)
    ledger.record(tool="a", route="r1", outcome="answered", key="k1",
                  charges=[Charge("p/x", failed, Decimal("0.1")), Charge("p/y", ok, Decimal("0.2"))])
    now[0] += 7200  # two hours later
    ledger.record(tool="a", route="r2", outcome="hit", charges=(), key=None)
    ledger.record(tool=None, route="r1", outcome="failed", key="k1", charges=[Charge("p/x", None, None)])
    process = ledger.process
    assert (process.calls, process.failed, process.cache_hits, process.provider_calls) == (2, 1, 1, 3)
    assert (process.input_tokens, process.output_tokens, process.unknown_cost) == (13, 5, 1)
    assert process.cost_usd == Decimal("0.3")
    assert {k: (v.calls, v.failed) for k, v in ledger.tools.items()} == {"a": (2, 0)}
    assert {k: (v.calls, v.failed, v.provider_calls) for k, v in ledger.routes.items()} == \
        {"r1": (1, 1, 3), "r2": (1, 0, 0)}
    assert {k: (v.provider_calls, v.input_tokens, v.calls) for k, v in ledger.targets.items()} == \
        {"p/x": (2, 3, 0), "p/y": (1, 10, 0)}
    assert {k: v.failed for k, v in ledger.keys.items()} == {"k1": 1}
    last_hour = await ledger.totals("route", since=3600)
    assert {k: (v.calls, v.failed) for k, v in last_hour.items()} == {"r1": (0, 1), "r2": (1, 0)}
    assert (await ledger.totals("gateway", since=3600))["all"].provider_calls == 1
    assert await ledger.totals("tool", since=3600) == {"a": Totals(calls=1, cache_hits=1)}
    ledger.process.calls += 100  # a copy: the ledger's own totals are not changed through it
    assert ledger.snapshot()["process"]["calls"] == 2


def _reference_answered_cost(attempts: tuple[Attempt, ...]) -> tuple[Decimal | None, int]:
    """The general sum, as the router first computed it for every call."""
    answer = next(a for a in attempts if a.outcome == "ok")
    known = sum((a.cost_usd for a in attempts if a.cost_usd is not None), Decimal(0))
    unknown = sum(1 for a in attempts if a.cost_usd is None and a is not answer)
    return (None if answer.cost_usd is None else known), unknown


_costs = st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False),
                   st.sampled_from([Decimal("1E+2"), Decimal("-0"), Decimal("0E-8"), Decimal("0.000150")]))


@settings(max_examples=300, deadline=None)
@given(costs=st.lists(_costs, min_size=1, max_size=4), answer=st.integers(0, 3))
def test_answered_cost_is_the_general_sum_in_the_same_decimal_form(costs, answer):
    answer %= len(costs)
    attempts = tuple(Attempt("t", "p", "m", "ok" if i == answer else "server", 1.0, None, cost)
                     for i, cost in enumerate(costs))
    found, expected = answered_cost(attempts), _reference_answered_cost(attempts)
    assert found == expected and str(found[0]) == str(expected[0])
