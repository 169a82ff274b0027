"""What a route is made of, and what a routed call reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .._errors import ProviderError
from ..accounting import Price
from ..providers import Completion, Provider, Usage
from ._policy import Breaker, LatencyStats, RetryPolicy

__all__ = ["Attempt", "Route", "RouteError", "Routed", "Target"]


@dataclass(slots=True, eq=False)
class Target:
    """One provider and model of a route, with its live state (breaker, observed latency).

    `label` names it in results and totals: "<provider name>/<model>" (with "#n" added when a
    route lists the same pair twice). `params` are the alias' params under the target's own.
    """

    label: str
    provider: Provider
    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    kind: str = ""
    weight: float = 1.0
    price: Price | None = None
    breaker: Breaker | None = None
    latency: LatencyStats = field(default_factory=LatencyStats)


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """A model alias: its targets and how calls are spread over them.

    `provider`, `model` and `params` are those of the first (primary) target.
    """

    name: str
    targets: tuple[Target, ...]
    strategy: str = "fallback"  # fallback | weighted | least_latency
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    first_token_s: float | None = None
    total_s: float | None = None
    hedge_after_s: float | None = None

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError(f"route '{self.name}' has no targets")

    @property
    def provider(self) -> Provider:
        return self.targets[0].provider

    @property
    def model(self) -> str:
        return self.targets[0].model

    @property
    def params(self) -> Mapping[str, Any]:
        return self.targets[0].params


@dataclass(frozen=True, slots=True)
class Attempt:
    """One provider call a routed call made.

    `outcome`: "ok" (the answer), "lost" (a hedged call that also finished, after the answer),
    "cancelled" (stopped by the router: a hedge that lost, or the caller went away), or the
    failure's kind (rate_limit, server, timeout, ...). `usage` None: not known. `cost_usd` None:
    unknown (the model has no price, or the call may have been billed for unknown usage).
    """

    target: str
    provider: str
    model: str
    outcome: str
    duration_ms: float
    usage: Usage | None = None
    cost_usd: Decimal | None = None
    hedge: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Routed:
    """A routed call's answer and how it was reached.

    `cost_usd` is what the call cost as far as known: every attempt's known cost (0 for a cache
    hit); None when the answering model has no price. `unknown_cost` counts the other attempts
    whose cost is not known (so not in `cost_usd`). `cache` is "hit", "miss" or None (not cached).
    """

    route: Route
    target: Target
    completion: Completion
    attempts: tuple[Attempt, ...] = ()
    cost_usd: Decimal | None = None
    unknown_cost: int = 0
    cache: str | None = None
    hedged: bool = False
    skipped: tuple[str, ...] = ()
    cache_key: str | None = None
    cache_ttl_s: float | None = None

    def describe(self) -> dict[str, Any]:
        """The routing facts of the call, as JSON for a result's `_meta`."""
        usage = self.completion.usage
        info: dict[str, Any] = {
            "route": self.route.name,
            "target": self.target.label,
            "provider": self.target.provider.name,
            "model": self.completion.model,
            "attempts": len(self.attempts),
            "finish_reason": self.completion.finish_reason,
            "usage": {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_tokens": usage.cache_read_tokens,
                "cache_write_tokens": usage.cache_write_tokens,
                "reasoning_tokens": usage.reasoning_tokens,
            },
            "cost_usd": None if self.cost_usd is None else float(self.cost_usd),
        }
        if self.unknown_cost:
            info["cost_unknown_attempts"] = self.unknown_cost
        if self.cache is not None:
            info["cache"] = self.cache
        if self.hedged:
            info["hedged"] = True
        failed = [{"target": a.target, "outcome": a.outcome} for a in self.attempts if a.outcome not in ("ok",)]
        if failed:
            info["other_attempts"] = failed
        if self.skipped:
            info["skipped"] = list(self.skipped)
        return info


class RouteError(ProviderError):
    """A routed call that failed: the last target's error, with every attempt of the call.

    Keeps the failing provider's name, kind, status, retry_after and output_started; the message
    adds a summary of the route's attempts when there was more than one (or a skipped target).
    """

    def __init__(self, route: str, error: ProviderError, attempts: tuple[Attempt, ...],
                 skipped: tuple[str, ...] = ()) -> None:
        cause = error.cause
        if len(attempts) > 1 or skipped:
            tries = ", ".join(f"{a.target} {a.outcome}" for a in attempts)
            parts = [f"{len(attempts)} attempt{'s' if len(attempts) != 1 else ''}: {tries}"] if attempts else []
            if skipped:
                parts.append(f"skipped (circuit open): {', '.join(skipped)}")
            cause = f"{cause} (route '{route}': {'; '.join(parts)})"
        super().__init__(
            error.provider, cause, kind=error.kind, retryable=error.retryable, status=error.status,
            retry_after=error.retry_after, output_started=error.output_started,
        )
        self.route = route
        self.attempts = attempts
        self.skipped = skipped
        self.last = error
