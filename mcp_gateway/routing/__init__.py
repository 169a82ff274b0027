"""Routing: which providers and models answer a model alias, and how failures are survived.

A model alias is a `Route` over one or more `Target`s (strategy fallback, weighted or
least_latency, or fanout: every target at once), with per-target retries, router-enforced deadlines, a circuit breaker per target,
failover before any text reached the caller and optional hedging. `Router.complete` returns a
`Routed`: the answer, the target that gave it, every attempt made and the call's cost.
"""

from ._build import build_router, price_warnings, repair_policy
from ._policy import Breaker, LatencyStats, RepairPolicy, RetryPolicy
from ._route import Attempt, FanoutAnswer, Route, Routed, RouteError, Target, describe_failure
from ._router import Router

__all__ = [
    "Attempt",
    "Breaker",
    "FanoutAnswer",
    "LatencyStats",
    "RepairPolicy",
    "RetryPolicy",
    "Route",
    "RouteError",
    "Routed",
    "Router",
    "Target",
    "build_router",
    "describe_failure",
    "price_warnings",
    "repair_policy",
]
