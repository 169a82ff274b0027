"""The catalog's usage tables over both ledger shapes: main's (totals since start-up per tool and
route) and a time-bucketed one with `totals(by=, since=)` (the cluster ledger's read API), which
gives "last hour" and "last day" tables including per key. Unpriced calls never read as $0."""

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


async def test_process_ledger_gives_totals_since_start_up_and_says_what_it_lacks():
    ledger = Ledger()
    ledger.record(tool="summarize", route="default", outcome="answered",
                  charges=[Charge("offline/mock-1", Usage(10, 5), Decimal("0.5")),
                           Charge("offline/mock-1", None, None)])
    tables = await usage_tables(_gateway(ledger), EVERYTHING)
    assert [(t.by, t.window) for t in tables] == [("tool", "since start-up"), ("route", "since start-up"),
                                                  ("key", "since start-up")]
    assert tables[0].rows[0].cost_text == "$0.5 + 1 unpriced"
    assert tables[2].rows == [] and "does not record" in tables[2].note
    tool_page = await usage_tables(_gateway(ledger), EVERYTHING, tool="other")
    assert [t.by for t in tool_page] == ["tool"] and tool_page[0].rows == []
    with pytest.raises(ValueError, match="unknown grouping"):
        await usage_totals(_gateway(ledger), EVERYTHING, "planet", None)
