"""What a route is made of, and what a routed call reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from .._errors import ProviderError
from ..accounting import BudgetExceededError, Price
from ..providers import Completion, Provider, Usage
from ._policy import Breaker, LatencyStats, RepairPolicy, RetryPolicy

__all__ = ["Attempt", "FanoutAnswer", "Route", "RouteError", "Routed", "Target", "describe_failure", "usage_dict"]


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
    strategy: str = "fallback"  # fallback | weighted | least_latency | fanout
    merge: str = "all"  # fanout: all | first_valid
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    first_token_s: float | None = None
    total_s: float | None = None
    hedge_after_s: float | None = None
    repair: RepairPolicy = field(default_factory=RepairPolicy)

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
class FanoutAnswer:
    """One target's outcome in a fan-out call: its answer, or the error that ended it (None with no
    answer: cancelled because another target's valid answer came first). `cost_usd` sums the
    target's attempts whose cost is known."""

    target: Target
    completion: Completion | None
    error: Exception | None
    attempts: tuple[Attempt, ...]
    cost_usd: Decimal | None
    duration_ms: float

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"target": self.target.label, "provider": self.target.provider.name,
                                "model": self.completion.model if self.completion else self.target.model,
                                "ok": self.completion is not None}
        if self.completion is not None:
            info["finish_reason"] = self.completion.finish_reason
            info["usage"] = usage_dict(self.completion.usage)
        elif self.error is not None:
            info["error"] = str(self.error)
        else:
            info["error"] = "cancelled: another target's valid answer came first"
        info["cost_usd"] = None if self.cost_usd is None else float(self.cost_usd)
        info["duration_ms"] = round(self.duration_ms, 3)
        return info


def usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


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
    repairs: int = 0
    answers: tuple[FanoutAnswer, ...] = ()  # strategy fanout: every target's outcome, in route order

    def describe(self) -> dict[str, Any]:
        """The routing facts of the call, as JSON for a result's `_meta`.

        `usage` adds up every attempt whose usage is known (the answer, failed tries that reported
        usage, hedges that lost, answers rejected by the output schema), like `cost_usd`.
        """
        attempts, completion, target = self.attempts, self.completion, self.target
        info: dict[str, Any] = {
            "route": self.route.name,
            "target": target.label,
            "provider": target.provider.name,
            "model": completion.model,
            "attempts": len(attempts),
            "finish_reason": completion.finish_reason,
            "usage": usage_dict(_total_usage(attempts) if attempts else completion.usage),
            "cost_usd": None if self.cost_usd is None else float(self.cost_usd),
        }
        if self.unknown_cost:
            info["cost_unknown_attempts"] = self.unknown_cost
        if self.cache is not None:
            info["cache"] = self.cache
        if self.repairs:
            info["output_repairs"] = self.repairs
        others = [a for a in attempts if a.outcome != "ok"]
        if others or self.skipped or self.hedged:
            _add_attempts(info, others, self.skipped, self.hedged)
        if self.answers:
            info["fanout"] = [answer.describe() for answer in self.answers]
        return info

    def rejected(self, reason: str) -> tuple[Attempt, ...]:
        """The attempts, with the answer marked `output_invalid` (it failed the output schema)."""
        return tuple(replace(a, outcome="output_invalid", error=reason[:300]) if a.outcome == "ok" else a
                     for a in self.attempts)

    def after(self, earlier: Routed, reason: str) -> Routed:
        """This call repaired `earlier`, whose answer was rejected for `reason`: one result for both,
        with every attempt, the cost of all, and `earlier`'s cache entry (the repaired answer fills it)."""
        attempts = earlier.rejected(reason) + self.attempts
        answer = next(a for a in self.attempts if a.outcome == "ok")
        cost = None if self.cost_usd is None else sum(
            (a.cost_usd for a in attempts if a.cost_usd is not None), Decimal(0))
        unknown = sum(1 for a in attempts if a.cost_usd is None and a is not answer)
        return replace(self, attempts=attempts, cost_usd=cost, unknown_cost=unknown,
                       hedged=self.hedged or earlier.hedged,
                       skipped=tuple(dict.fromkeys(earlier.skipped + self.skipped)),
                       cache=earlier.cache, cache_key=earlier.cache_key, cache_ttl_s=earlier.cache_ttl_s,
                       repairs=earlier.repairs + 1)


def _total_usage(attempts: tuple[Attempt, ...]) -> Usage:
    """The usage of every attempt whose usage is known, added up (field by field, from 0)."""
    inputs = outputs = cache_read = cache_write = reasoning = 0
    for attempt in attempts:
        usage = attempt.usage
        if usage is not None:
            inputs += usage.input_tokens
            outputs += usage.output_tokens
            cache_read += usage.cache_read_tokens
            cache_write += usage.cache_write_tokens
            reasoning += usage.reasoning_tokens
    return Usage(inputs, outputs, cache_read, cache_write, reasoning)


def describe_failure(route: str, error: Exception, attempts: tuple[Attempt, ...], skipped: tuple[str, ...] = (),
                     hedged: bool = False) -> dict[str, Any]:
    """The routing facts of a call that ended in `error`, shaped like `Routed.describe()`.

    `target`, `provider` and `model` name the last target tried (None when none was); `usage` and
    `cost_usd` add up every attempt whose usage and cost are known (the others are counted in
    `cost_unknown_attempts`); `error` says how the call ended; `other_attempts` lists every
    attempt with its outcome and cause.
    """
    last = attempts[-1] if attempts else None
    unknown = sum(1 for a in attempts if a.cost_usd is None)
    info: dict[str, Any] = {
        "route": route,
        "target": last.target if last else None,
        "provider": last.provider if last else None,
        "model": last.model if last else None,
        "attempts": len(attempts),
        "finish_reason": None,
        "usage": usage_dict(_total_usage(attempts)),
        "cost_usd": float(sum((a.cost_usd for a in attempts if a.cost_usd is not None), Decimal(0))),
        "error": _error_dict(error),
    }
    if unknown:
        info["cost_unknown_attempts"] = unknown
    _add_attempts(info, list(attempts), skipped, hedged)
    return info


def _error_dict(error: Exception) -> dict[str, Any]:
    if isinstance(error, ProviderError):
        info: dict[str, Any] = {"kind": error.kind, "retryable": error.retryable}
        if error.status is not None:
            info["status"] = error.status
        if error.retry_after is not None:
            info["retry_after_s"] = round(error.retry_after, 3)
        if error.output_started:
            info["output_started"] = True
        return info
    if isinstance(error, BudgetExceededError):
        return {"kind": "budget", "scope": error.scope}
    return {"kind": type(error).__name__}


def _add_attempts(info: dict[str, Any], attempts: list[Attempt], skipped: tuple[str, ...], hedged: bool) -> None:
    if hedged:
        info["hedged"] = True
    if attempts:
        info["other_attempts"] = [
            {"target": a.target, "outcome": a.outcome, **({"error": a.error} if a.error else {})} for a in attempts]
    if skipped:
        info["skipped"] = list(skipped)


class RouteError(ProviderError):
    """A routed call that failed: the last target's error, with every attempt of the call.

    Keeps the failing provider's name, kind, status, retry_after and output_started; the message
    adds a summary of the route's attempts when there was more than one (or a skipped target).
    `call_meta` holds the same facts as JSON (see `describe_failure`).
    """

    def __init__(self, route: str, error: ProviderError, attempts: tuple[Attempt, ...],
                 skipped: tuple[str, ...] = (), hedged: bool = False) -> None:
        cause = error.cause
        if len(attempts) > 1 or skipped:
            tries = ", ".join(f"{a.target} {a.outcome}" for a in attempts)
            parts = [f"{len(attempts)} attempt{'s' if len(attempts) != 1 else ''}: {tries}"] if attempts else []
            if skipped:
                parts.append(f"skipped (circuit open): {', '.join(skipped)}")
            cause = f"{cause} (route '{route}': {'; '.join(parts)})"
        super().__init__(
            error.provider, cause, kind=error.kind, retryable=error.retryable, status=error.status,
            retry_after=error.retry_after, output_started=error.output_started, usage=error.usage,
        )
        self.route = route
        self.attempts = attempts
        self.skipped = skipped
        self.last = error
        self.call_meta = describe_failure(route, error, attempts, skipped, hedged)
