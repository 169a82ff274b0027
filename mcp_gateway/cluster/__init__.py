"""Several gateway processes acting as one, through the Redis server named by `cluster:`.

Shared, and what each does while Redis is down:

==================  =============================================================================
budgets             shared exactly (Lua); Redis down: calls with a budget are refused, clearly
usage ledger        cluster totals; Redis down: counted locally, sent once Redis answers
circuit breakers    open state and the half-open probe shared; Redis down: each process alone
config reloads      pub/sub to every process; missed ones caught up on reconnection
sessions, rate      `store: redis` (their own sections; `url` defaults to the cluster's)
limits, cache
==================  =============================================================================

Kept per process on purpose: least-latency statistics (each process measures its own path to a
provider) and hedging (one call's own timers). The response cache has no single flight: two
processes that miss the same key at once both ask the provider, as two calls in one process do.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._errors import ConfigIssue
from ..config import LoadedConfig, resolve_env
from ..routing import Router
from ._breaker import SharedBreaker
from ..accounting import BudgetUnavailableError
from ._budgets import SharedBudgets
from ._events import ClusterEvents, publish, request_reload
from ._ledger import SharedLedger
from ._link import RedisLink, is_outage

__all__ = [
    "BudgetUnavailableError",
    "ClusterEvents",
    "RedisLink",
    "SharedBreaker",
    "SharedBudgets",
    "SharedLedger",
    "breakers",
    "is_outage",
    "open_link",
    "publish",
    "request_reload",
    "share",
]


def open_link(loaded: LoadedConfig, environ: Mapping[str, str]) -> tuple[RedisLink | None, list[ConfigIssue]]:
    """The cluster's Redis link when the config has a `cluster:` section (no connection yet)."""
    located = loaded.cluster
    if located is None:
        return None, []
    config = located.value
    url, missing = resolve_env(config.redis, environ)
    if url is None:
        return None, [located.origin.issue(("redis",), f"environment variable {missing} is not set")]
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None, [located.origin.issue(("redis",), "expected a redis://, rediss:// or unix:// URL")]
    return RedisLink(url, prefix=config.prefix, timeout_s=config.timeout_ms / 1000), []


def share(router: Router, link: RedisLink) -> None:
    """Move `router`'s budgets, ledger and breakers into the cluster behind `link`."""
    if router.budgets is not None:
        router.budgets = SharedBudgets(router.budgets.config, link)
    router.ledger = SharedLedger(link)
    for route in router.routes.values():
        for target in route.targets:
            if target.breaker is not None:
                target.breaker = SharedBreaker(f"{route.name}/{target.label}", target.breaker.failures,
                                               target.breaker.cooldown_s, link)


def breakers(router: Router) -> dict[str, SharedBreaker]:
    """The shared breakers of `router`, by name."""
    return {b.name: b for route in router.routes.values() for t in route.targets
            if isinstance(b := t.breaker, SharedBreaker)}
