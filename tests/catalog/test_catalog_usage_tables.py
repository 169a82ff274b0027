"""The catalog's usage tables over the ledger's read API `totals(by=, since=)` (the process ledger's
and the cluster's alike): "last hour" and "last day" tables per tool, model alias and key.
Unpriced calls never read as $0."""

from __future__ import annotations

import types
from decimal import Decimal

import pytest

from mcp_gateway.accounting import Charge, Ledger
from mcp_gateway.accounting._ledger import Totals
from mcp_gateway.providers import Usage
from mcp_gateway.security.scopes import ScopeSet
from mcp_gateway.server._catalog_data import usage_tables, usage_totals

pytestmark = pytest.mark.anyio
EVERYTHING = ScopeSet.of(["tools:*"])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class BucketedLedger:
    """The read API of a time-bucketed ledger, over calls recorded at given times."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.calls: list[tuple[float, dict[str, str], Charge]] = []

    def record(self, at: float, charge: Charge, **names: str) -> None:
        self.calls.append((at, names, charge))

    async def totals(self, by: str = "gateway", since: float | None = None) -> dict[str, Totals]:
        found: dict[str, Totals] = {}
        for at, names, charge in self.calls:
            if since is None or at >= self.now - since:
                totals = found.setdefault(names[by], Totals())
                totals.calls += 1
                totals.add(charge)
        return found


def _gateway(ledger: object) -> object:
    return types.SimpleNamespace(router=types.SimpleNamespace(ledger=ledger))


async def test_windowed_ledger_gives_hour_and_day_tables_per_tool_alias_and_key():
    ledger = BucketedLedger(now=100_000.0)
    ledger.record(100_000.0 - 7200, Charge("offline/mock-1", Usage(10, 5), Decimal("0.002")),
                  tool="summarize", route="default", key="key:lead")
    ledger.record(100_000.0 - 60, Charge("remote/x", Usage(10, 5), None),
                  tool="classify", route="unpriced", key="key:intern")
    tables = {(t.by, t.window): t for t in await usage_tables(_gateway(ledger), EVERYTHING)}
    assert set(tables) == {(by, w) for by in ("tool", "route", "key") for w in ("last hour", "last day")}
    hour = tables["tool", "last hour"].rows
    assert [(r.name, r.cost_text) for r in hour] == [("classify", "unknown (1 unpriced)")]
    day = tables["key", "last day"].rows
    assert [(r.name, r.cost_text) for r in day] == [("key:lead", "$0.002"), ("key:intern", "unknown (1 unpriced)")]
    scoped = await usage_totals(_gateway(ledger), ScopeSet.of(["tools:summarize"]), "tool", 86400)
    assert scoped.window == "last 1d" and [r.name for r in scoped.rows] == ["summarize"]
    with pytest.raises(PermissionError):
        await usage_totals(_gateway(ledger), ScopeSet.of(["tools:summarize"]), "key", 3600)


async def test_process_ledger_gives_hour_and_day_tables_with_unpriced_calls_apart():
    now = [1_000_000.0]
    ledger = Ledger(clock=lambda: now[0])
    ledger.record(tool="summarize", route="default", outcome="answered", key="key:lead",
                  charges=[Charge("offline/mock-1", Usage(10, 5), Decimal("0.5")),
                           Charge("offline/mock-1", None, None)])
    now[0] += 7200  # two hours later: out of the last hour, still in the last day
    ledger.record(tool="classify", route="default", outcome="answered", key="key:intern",
                  charges=[Charge("offline/mock-1", Usage(10, 5), Decimal("0.25"))])
    tables = {(t.by, t.window): t for t in await usage_tables(_gateway(ledger), EVERYTHING)}
    assert set(tables) == {(by, w) for by in ("tool", "route", "key") for w in ("last hour", "last day")}
    assert [r.name for r in tables["tool", "last hour"].rows] == ["classify"]
    day = {r.name: r.cost_text for r in tables["tool", "last day"].rows}
    assert day == {"summarize": "$0.5 + 1 unpriced", "classify": "$0.25"}
    assert {r.name for r in tables["key", "last day"].rows} == {"key:lead", "key:intern"}
    tool_page = await usage_tables(_gateway(ledger), EVERYTHING, tool="other")
    assert {t.by for t in tool_page} == {"tool"} and all(t.rows == [] for t in tool_page)
    with pytest.raises(ValueError, match="unknown grouping"):
        await usage_totals(_gateway(ledger), EVERYTHING, "planet", None)
