"""Running totals of usage and cost: per process, per tool, per route and per target.

Every provider call a routed call made is one `Charge`: the answer, a failed try, a hedged call
that lost. A charge whose usage is unknown (a call cancelled or cut off after the provider may
have started billing) or whose model has no price adds no cost and is counted as such, so a total
is never silently low: `unknown_cost` says how many charges it leaves out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..providers import Usage

__all__ = ["Charge", "Ledger", "Totals"]

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Charge:
    """One provider call. `usage` None: not known; `cost_usd` None: unknown (no price or no usage)."""

    target: str
    usage: Usage | None
    cost_usd: Decimal | None


@dataclass(slots=True)
class Totals:
    calls: int = 0  # calls answered (by a provider or the cache)
    failed: int = 0  # calls that ended in an error (refusals by a budget included)
    cache_hits: int = 0
    provider_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal = field(default_factory=Decimal)
    unknown_cost: int = 0  # provider calls whose cost is not in cost_usd

    def add(self, charge: Charge) -> None:
        self.provider_calls += 1
        usage = charge.usage
        if usage is not None:
            self.input_tokens += usage.input_tokens
            self.output_tokens += usage.output_tokens
            self.cache_read_tokens += usage.cache_read_tokens
            self.cache_write_tokens += usage.cache_write_tokens
            self.reasoning_tokens += usage.reasoning_tokens
        if charge.cost_usd is None:
            self.unknown_cost += 1
        else:
            self.cost_usd += charge.cost_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "failed": self.failed,
            "cache_hits": self.cache_hits,
            "provider_calls": self.provider_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": str(self.cost_usd),
            "unknown_cost": self.unknown_cost,
        }


class Ledger:
    """Totals of one gateway process (carried over a config reload by `Router.adopt`)."""

    def __init__(self) -> None:
        self.process = Totals()
        self.tools: dict[str, Totals] = {}
        self.routes: dict[str, Totals] = {}
        self.targets: dict[str, Totals] = {}

    def record(self, *, tool: str | None, route: str, charges: Iterable[Charge], outcome: str) -> None:
        """One call: its charges and its `outcome` ("answered", "hit" or "failed")."""
        scopes = [self.process, self.routes.setdefault(route, Totals())]
        if tool is not None:
            scopes.append(self.tools.setdefault(tool, Totals()))
        for scope in scopes:
            if outcome == "failed":
                scope.failed += 1
            else:
                scope.calls += 1
                if outcome == "hit":
                    scope.cache_hits += 1
        for charge in charges:
            for scope in scopes:
                scope.add(charge)
            self.targets.setdefault(charge.target, Totals()).add(charge)

    def snapshot(self) -> dict[str, Any]:
        return {
            "process": self.process.to_dict(),
            "tools": {k: v.to_dict() for k, v in sorted(self.tools.items())},
            "routes": {k: v.to_dict() for k, v in sorted(self.routes.items())},
            "targets": {k: v.to_dict() for k, v in sorted(self.targets.items())},
        }
