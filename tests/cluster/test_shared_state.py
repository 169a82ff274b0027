"""The shared pieces of a cluster against a real Redis, one link per simulated process: budgets
(exact, windows, leases of dead processes, outages), the ledger's time buckets, breakers, config."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from decimal import Decimal

import anyio
import pytest

from mcp_gateway._errors import ConfigError
from mcp_gateway._gateway import load_gateway
from mcp_gateway.accounting import BudgetExceededError, Charge
from mcp_gateway.cluster import (
    BudgetUnavailableError,
    ClusterEvents,
    RedisLink,
    SharedBreaker,
    SharedBudgets,
    SharedLedger,
)
from mcp_gateway.config._models import BudgetsConfig
from mcp_gateway.providers import Usage
from tests.redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio
_prefixes = itertools.count()


@pytest.fixture
async def links(redis_url):
    """Three links (three "processes") under a prefix of this test's own."""
    prefix = f"unit{next(_prefixes)}:"
    made = [RedisLink(redis_url, prefix=prefix, timeout_s=2.0) for _ in range(3)]  # a busy machine is no outage
    yield made
    for link in made:
        await link.aclose()


def budgets(links, config: dict, **kwargs) -> list[SharedBudgets]:
    model = BudgetsConfig.model_validate(config)
    return [SharedBudgets(model, link, **kwargs) for link in links]


async def test_concurrent_holds_from_three_processes_admit_exactly_what_fits(links):
    shared = budgets(links, {"total": {"usd": 1}, "per_tool": {"t": {"usd": 0.25}}})
    held, refused = [], []

    async def one(i: int) -> None:
        try:
            held.append(await shared[i % 3].hold("t", None, Decimal("0.01")))
        except BudgetExceededError as exc:
            refused.append(exc)

    async with anyio.create_task_group() as group:
        for i in range(200):
            group.start_soon(one, i)
    assert len(held) == 25 and len(refused) == 175
    assert refused[0].scope == "tool 't'" and "$0 of $0.25 is left" in str(refused[0])
    for hold in held[:5]:
        await hold.close(Decimal("0.002"))  # settled below the hold: the difference is free again
    await held[5].close(None)  # unknown cost: the whole hold stays charged
    extra = [await shared[0].hold("t", None, Decimal("0.008")) for _ in range(5)]
    with pytest.raises(BudgetExceededError):
        await shared[1].hold("t", None, Decimal("0.001"))
    for hold in held[6:] + extra:
        await hold.close(Decimal(0))
    assert (await shared[2].hold("other", None, Decimal("0.5"))).amount == Decimal("0.5")  # total only


async def test_a_window_forgets_old_spending_and_a_dead_process_hold_is_charged_when_its_lease_ends(links):
    windowed = budgets(links, {"per_session": {"usd": 0.1, "window_s": 0.64}})
    first = await windowed[0].hold(None, "s1", Decimal("0.1"))
    await first.close(Decimal("0.1"))
    with pytest.raises(BudgetExceededError, match=r"per 0\.64 s"):
        await windowed[1].hold(None, "s1", Decimal("0.01"))
    assert await windowed[1].hold(None, "s2", Decimal("0.1"))  # another session has its own
    with anyio.fail_after(5):
        while True:  # spending leaves the window (up to 1/64 of it late, never early)
            try:
                await windowed[2].hold(None, "s1", Decimal("0.1"))
                break
            except BudgetExceededError:
                await anyio.sleep(0.05)

    leased = budgets(links, {"total": {"usd": 0.1}}, lease_ttl_s=0.3)
    await leased[0].hold(None, None, Decimal("0.06"))  # never settled: its process "died"
    with pytest.raises(BudgetExceededError):
        await leased[1].hold(None, None, Decimal("0.06"))
    await anyio.sleep(0.35)
    with pytest.raises(BudgetExceededError, match=r"\$0\.04 of \$0\.1 is left"):  # charged in full
        await leased[1].hold(None, None, Decimal("0.06"))


async def test_redis_down_refuses_budgeted_calls_within_the_bound_and_recovers(tmp_path):
    with RedisServer(tmp_path) as server:
        link = RedisLink(server.url, prefix="down:", timeout_s=0.3)
        shared = SharedBudgets(BudgetsConfig.model_validate({"total": {"usd": 1}}), link)
        held = await shared.hold(None, None, Decimal("0.1"))
        server.stop()
        with anyio.fail_after(3):
            with pytest.raises(BudgetUnavailableError, match=r"cannot be checked: the cluster store is unreachable"):
                await shared.hold(None, None, Decimal("0.1"))
            await held.close(Decimal("0.1"))  # logged, not raised: the lease settles it later
        server.start()
        assert (await shared.hold(None, None, Decimal("0.1"))).amount == Decimal("0.1")
        await link.aclose()


async def test_the_ledger_totals_the_cluster_by_dimension_and_time(links):
    ledgers = [SharedLedger(link) for link in links]
    for i, ledger in enumerate(ledgers):
        ledger.record(tool="t", route="fast", outcome="answered", key=f"key{i % 2}",
                      charges=[Charge("offline/mock-1", Usage(10, 5), Decimal("0.001"))])
        ledger.record(tool="t", route="fast", outcome="failed", key="key0", charges=())
        await ledger.flush()
    tools = await ledgers[0].totals(by="tool")
    assert tools["t"].calls == 3 and tools["t"].failed == 3 and tools["t"].cost_usd == Decimal("0.003")
    keys = await ledgers[1].totals(by="key", since=3600)
    assert keys["key0"].calls == 2 and keys["key0"].failed == 3 and keys["key1"].calls == 1
    assert (await ledgers[2].totals(by="target", since=2 * 86400))["offline/mock-1"].input_tokens == 30
    assert (await ledgers[2].totals(by="gateway"))["all"].provider_calls == 3
    report = await ledgers[0].report()
    assert report["scope"] == "cluster" and report["this_process"]["process"]["calls"] == 1
    with pytest.raises(ValueError, match="unknown dimension 'model'"):
        await ledgers[0].totals(by="model")


async def test_a_flush_while_the_call_is_being_cancelled_still_sends(links):
    # The router flushes in the `finally` of a call that may be cancelled; the ledger shields its send.
    ledger = SharedLedger(links[0])
    ledger.record(tool="t", route="fast", outcome="failed", key=None,
                  charges=[Charge("offline/mock-1", Usage(7, 0), None)])
    with anyio.CancelScope() as scope:
        scope.cancel()
        await ledger.flush()
    totals = await SharedLedger(links[1]).totals(by="tool")
    assert totals["t"].failed == 1 and totals["t"].input_tokens == 7


async def test_a_breaker_opened_on_one_process_is_skipped_by_all_and_one_process_probes(links):
    breakers = [SharedBreaker("fast/offline/mock-1", 2, 0.3, link) for link in links]
    async with anyio.create_task_group() as group:
        listeners = []
        for link, breaker in zip(links, breakers):
            events = ClusterEvents(link, on_reload=_no_reload, version=lambda: "v",
                                   breakers=lambda b=breaker: {b.name: b})
            listeners.append(events)
            group.start_soon(events.run, group)
        with anyio.fail_after(5):
            for events in listeners:
                await events.connected.wait()
        breakers[0].failure("closed")
        breakers[0].failure("closed")  # opens here, and is broadcast
        with anyio.fail_after(5):
            while any(b.admit() is not None for b in breakers[1:]):
                await anyio.sleep(0.01)
        await anyio.sleep(0.35)  # the cooldown is over: every process would like to probe
        tickets: list[str | None] = []
        with anyio.fail_after(5):
            while "probe" not in tickets:
                tickets = [b.admit() for b in breakers]
                await anyio.sleep(0.01)
            tickets += [b.admit() for b in breakers]
        assert tickets.count("probe") == 1  # one process claimed it
        prober = breakers[[i for i, t in enumerate(tickets[:3]) if t == "probe"][0]]
        prober.success("probe")  # the target is back: every process hears it
        with anyio.fail_after(5):
            while not all(b.admit() == "closed" for b in breakers):
                await anyio.sleep(0.01)
        group.cancel_scope.cancel()


async def _no_reload() -> tuple[bool, str]:
    return True, "v"


def test_cluster_config_errors_are_located_and_reload_needs_a_cluster(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent("""\
        format: mcp-gateway/1
        cluster: {redis: "${env:MGW_TEST_UNSET_REDIS}"}
        sessions: {store: redis}
        providers: {offline: {kind: mock}}
        models: {m: {provider: offline, model: mock-1}}
        tools: [{name: t, description: d, messages: [{role: user, content: hi}], model: m}]
        """))
    with pytest.raises(ConfigError) as caught:
        load_gateway(path, environ={})
    assert "gateway.yaml:2" in str(caught.value) and "environment variable MGW_TEST_UNSET_REDIS is not set" in str(
        caught.value)
    gateway_config = path.read_text().replace('"${env:MGW_TEST_UNSET_REDIS}"', f'"redis://127.0.0.1:{free_port()}/0"')
    path.write_text(gateway_config)
    gateway = load_gateway(path, environ={})
    assert gateway.sessions is not None  # `store: redis` without a url took the cluster's
    assert gateway.cluster is not None and isinstance(gateway.router.ledger, SharedLedger)
    down = subprocess.run([sys.executable, "-m", "mcp_gateway", "reload", str(path), "--timeout", "1"],
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "cannot reach the cluster's redis at 127.0.0.1:" in down.stderr
    assert "Traceback" not in down.stderr
    path.write_text(gateway_config.replace("cluster:", "# cluster:"))
    alone = subprocess.run([sys.executable, "-m", "mcp_gateway", "reload", str(path)],
                           capture_output=True, text=True, timeout=60)
    assert alone.returncode == 2 and "has no `cluster:` section" in alone.stderr and "SIGHUP" in alone.stderr
