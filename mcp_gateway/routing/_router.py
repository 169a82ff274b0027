"""Model aliases resolved to routes, and the one place providers are called.

`Router.complete` runs one call: the response cache (for tools that opt in), then the route's
targets in strategy order (see `_call`) or, with strategy fanout, all of them at once, with each try's worst-case cost reserved on the
budgets that apply and settled to its actual cost; every provider call is recorded in the
`Ledger`. Everything a provider raises comes back as `ProviderError` (a `RouteError`, with the
call's attempts); a refused budget as `BudgetExceededError`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import anyio

from .._errors import ProviderError
from ..accounting import (
    MILLION_TOKENS,
    BudgetExceededError,
    BudgetHold,
    BudgetStore,
    Charge,
    Ledger,
    input_token_bound,
)
from ..cache import CacheStore, entry_key, request_digest
from ..providers import (
    Completion,
    CompletionRequest,
    FunctionTool,
    Message,
    OnText,
    Preparable,
    Provider,
    ToolChoice,
    Usage,
)
from ._call import Guard, RoutedCall
from ._route import Attempt, FanoutAnswer, Route, Routed, RouteError, Target, describe_failure

__all__ = ["Router"]

log = logging.getLogger("mcp_gateway.routing")
ZERO = Decimal(0)


class Router:
    """Sends a rendered prompt to the route a tool names."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        providers: Mapping[str, Provider],
        *,
        ledger: Ledger | None = None,
        budgets: BudgetStore | None = None,
        cache: CacheStore | None = None,
        cache_settings: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        self._routes = dict(routes)
        self._providers = dict(providers)
        self.ledger = ledger if ledger is not None else Ledger()
        self.budgets = budgets
        self.cache = cache
        self._cache_settings = cache_settings
        self._owns_cache = True
        self._rng = rng if rng is not None else random.Random()
        self.unavailable: dict[str, str] = {}  # alias -> why it has no route (a provider not built)
        self.direct: Callable[[str], Route | None] | None = None  # `provider/model` routes, when allowed

    @property
    def routes(self) -> Mapping[str, Route]:
        return self._routes

    def route(self, name: str) -> Route:
        return self._routes[name]

    def resolve(self, model: str) -> Route | None:
        """The route a caller's `model` names: an alias, else (when allowed) `provider/model`."""
        route = self._routes.get(model)
        if route is None and self.direct is not None:
            route = self.direct(model)
        return route

    def order(self, route: Route) -> list[Target]:
        """The targets of `route` in the order this call tries them."""
        targets = route.targets
        if len(targets) == 1 or route.strategy in ("fallback", "fanout"):
            return list(targets)
        if route.strategy == "weighted":  # weighted random order (Efraimidis-Spirakis keys)
            rng = self._rng
            weighted = sorted((t for t in targets if t.weight > 0),
                              key=lambda t: rng.random() ** (1.0 / t.weight), reverse=True)
            return weighted + [t for t in targets if t.weight <= 0]
        # least_latency: never observed first (in the order written), then fastest first
        unobserved = [t for t in targets if t.latency.value is None]
        observed = sorted((t for t in targets if t.latency.value is not None), key=lambda t: t.latency.value or 0.0)
        return unobserved + observed

    async def complete(
        self,
        route_name: str,
        messages: tuple[Message, ...],
        *,
        params: Mapping[str, Any],
        output_schema: Mapping[str, Any] | None = None,
        on_text: OnText | None = None,
        tool: str | None = None,
        session: str | None = None,
        cache_ttl_s: float | None = None,
        tools: tuple[FunctionTool, ...] = (),
        tool_choice: ToolChoice | None = None,
        accept: Callable[[Completion], bool] | None = None,
        prefer: str | None = None,
        avoid: str | None = None,
        caller: str | None = None,
    ) -> Routed:
        """Answer through the route; raises ProviderError (RouteError) or BudgetExceededError.

        `accept` judges an answer for a fan-out route with `merge: first_valid` (default: any
        answer); the cache is not used for calls that offer tools. `prefer` names a target (by
        label) to try first, `avoid` one to try last (output repair). `caller` (the principal of
        the request, when known) is recorded in the ledger."""
        route = self.resolve(route_name)
        if route is None:
            raise KeyError(route_name)
        order = self.order(route)
        if prefer is not None:
            order.sort(key=lambda t: t.label != prefer)  # stable: the rest keep their order
        if avoid is not None:
            order.sort(key=lambda t: t.label == avoid)
        budgets = self.budgets if self.budgets is not None and self.budgets.applies(tool, session) else None
        requests: dict[Target, CompletionRequest] = {}
        for target in order:
            merged = {**target.params, **params}
            if budgets is not None and not _is_count(merged.get("max_tokens")):
                merged["max_tokens"] = budgets.max_tokens  # a budgeted call always has an output cap
            requests[target] = CompletionRequest(target.model, messages, merged, output_schema, tools, tool_choice)
        keys: dict[Target, str] | None = None
        if route.strategy == "fanout" and len(order) > 1:
            guard = self._guard(budgets, tool, session, requests, messages, output_schema)
            return await self._fan_out(route, order, requests, guard, accept, on_text, tool, caller)
        if cache_ttl_s and self.cache is not None and not tools:
            digest = request_digest(messages, output_schema)
            keys = {t: entry_key(digest, provider=t.provider.name, kind=t.kind, model=t.model,
                                 params=requests[t].params) for t in order}
            found = await self.cache.get_many([keys[t] for t in order])
            for target, hit in zip(order, found):
                if hit is not None:
                    return await self._hit(route, target, hit, on_text, tool, caller)
        guard = self._guard(budgets, tool, session, requests, messages, output_schema)
        call = RoutedCall(route, order, requests, on_text, guard, self._rng)
        answered = False
        try:
            await call.run()
            answered = call.result is not None and call.fatal is None
        finally:
            self.ledger.record(tool=tool, route=route.name, outcome="answered" if answered else "failed",
                               charges=tuple([Charge(a.target, a.usage, a.cost_usd) for a in call.attempts]),
                               key=caller)
            await self.ledger.flush()  # runs even while cancelled: a ledger that sends shields it
        attempts, skipped, hedged = tuple(call.attempts), tuple(call.skipped), call.hedged
        if call.fatal is not None:
            if isinstance(call.fatal, ProviderError):
                raise RouteError(route.name, call.fatal, attempts, skipped, hedged) from call.fatal
            raise call.fatal
        if call.result is None:
            last = call.failures[-1] if call.failures else None
            if isinstance(last, BudgetExceededError):
                last.call_meta = describe_failure(route.name, last, attempts, skipped, hedged)
                raise last
            if isinstance(last, ProviderError):
                raise RouteError(route.name, last, attempts, skipped, hedged) from last
            waits = [t.breaker.retry_in() for t in route.targets if t.breaker is not None]
            wait = min(waits, default=0.0)
            error = ProviderError(
                route.provider.name,
                f"every target of route '{route.name}' is skipped: circuit open (next probe in {wait:.1f} s)",
                kind="circuit_open", retryable=True, retry_after=wait,
            )
            raise RouteError(route.name, error, attempts, skipped, hedged)
        target, completion = call.result
        cost, unknown = answered_cost(attempts)
        if keys is None:  # positional (route, target, completion, attempts, cost_usd, unknown_cost, cache, ...)
            return Routed(route, target, completion, attempts, cost, unknown, None, hedged, skipped)
        return Routed(route, target, completion, attempts, cost, unknown, "miss", hedged, skipped, keys[target],
                      cache_ttl_s)

    async def _fan_out(self, route: Route, order: list[Target], requests: dict[Target, CompletionRequest],
                       guard: Guard | None, accept: Callable[[Completion], bool] | None, on_text: OnText | None,
                       tool: str | None, caller: str | None) -> Routed:
        """Every target at once, each with its own retries, breaker, budget reservation and
        deadlines; `merge: first_valid` cancels the others once an accepted answer is in."""
        first_valid = route.merge == "first_valid"
        calls = {target: RoutedCall(route, [target], requests, None, guard, self._rng) for target in order}
        durations: dict[Target, float] = {}
        finished: list[Target] = []  # in the order answers arrived
        winner: Target | None = None

        async with anyio.create_task_group() as group:

            async def run(target: Target) -> None:
                nonlocal winner
                started = time.perf_counter()
                try:
                    await calls[target].run()
                finally:
                    durations[target] = (time.perf_counter() - started) * 1000
                call = calls[target]
                if call.result is not None and call.fatal is None:
                    finished.append(target)
                    if first_valid and winner is None and (accept is None or accept(call.result[1])):
                        winner = target
                        group.cancel_scope.cancel()

            for target in order:
                group.start_soon(run, target)
        attempts = tuple(a for target in order for a in calls[target].attempts)
        answered = bool(finished)
        self.ledger.record(tool=tool, route=route.name, outcome="answered" if answered else "failed",
                           charges=[Charge(a.target, a.usage, a.cost_usd) for a in attempts], key=caller)
        await self.ledger.flush()
        answers = tuple(self._fan_answer(target, calls[target], durations.get(target, 0.0)) for target in order)
        if not answered:
            errors = [a.error for a in answers if a.error is not None]
            fatal = next((e for e in errors if not isinstance(e, ProviderError)), None)
            if fatal is not None:
                raise fatal
            last = errors[-1] if errors else ProviderError(route.provider.name, "no target answered")
            assert isinstance(last, ProviderError)
            raise RouteError(route.name, last, attempts, tuple(s for c in calls.values() for s in c.skipped)) from last
        chosen = winner or (finished[0] if first_valid else next(t for t in order if t in finished))
        completion = calls[chosen].result[1]  # type: ignore[index]
        if on_text is not None and first_valid and completion.text:
            await on_text(completion.text)  # answers are not streamed while targets race: the winner's, whole
        costs = [a.cost_usd for a in attempts]
        unknown_answer = any(a.cost_usd is None and a.outcome == "ok" for a in attempts)
        return Routed(
            route, chosen, completion, attempts,
            cost_usd=None if unknown_answer else sum((c for c in costs if c is not None), ZERO),
            unknown_cost=sum(1 for a in attempts if a.cost_usd is None and a.outcome != "ok"),
            skipped=tuple(s for c in calls.values() for s in c.skipped),
            answers=answers,
        )

    @staticmethod
    def _fan_answer(target: Target, call: RoutedCall, duration_ms: float) -> FanoutAnswer:
        attempts: tuple[Attempt, ...] = tuple(call.attempts)
        completion = call.result[1] if call.result is not None and call.fatal is None else None
        error: Exception | None = None
        if completion is None:
            error = call.fatal if isinstance(call.fatal, Exception) else (call.failures[-1] if call.failures else None)
            if error is None and call.skipped:
                error = ProviderError(target.provider.name, "skipped: circuit open", kind="circuit_open")
        known = [a.cost_usd for a in attempts if a.cost_usd is not None]
        cost = None if any(a.cost_usd is None for a in attempts) and not known else sum(known, ZERO)
        return FanoutAnswer(target, completion, error, attempts, cost, duration_ms)

    async def remember(self, routed: Routed, *, tool: str | None = None) -> None:
        """Store a cache miss' answer (call this once the answer has been checked and accepted);
        `tool` tags the entry so that disposing of the tool deletes it."""
        if routed.cache != "miss" or routed.cache_key is None or not routed.cache_ttl_s or self.cache is None:
            return
        await self.cache.put(routed.cache_key, routed.completion, routed.cache_ttl_s, tool=tool)

    async def _hit(self, route: Route, target: Target, hit: Completion, on_text: OnText | None,
                   tool: str | None, caller: str | None) -> Routed:
        completion = Completion(text=hit.text, finish_reason=hit.finish_reason, usage=Usage(), model=hit.model,
                                structured=hit.structured)
        if on_text is not None and completion.text:
            await on_text(completion.text)
        self.ledger.record(tool=tool, route=route.name, outcome="hit", charges=(), key=caller)
        await self.ledger.flush()
        return Routed(route, target, completion, (), cost_usd=ZERO, cache="hit")

    def _guard(self, budgets: BudgetStore | None, tool: str | None, session: str | None,
               requests: dict[Target, CompletionRequest], messages: tuple[Message, ...],
               output_schema: Mapping[str, Any] | None) -> Guard | None:
        if budgets is None:
            return None
        bound = input_token_bound(messages, output_schema)

        async def guard(target: Target) -> BudgetHold | None:
            price = target.price
            if price is None:
                scopes = budgets.scopes(tool, session)
                raise BudgetExceededError(
                    f"Budget check failed for {scopes}: model '{target.model}' of provider "
                    f"'{target.provider.name}' has no price, so the call's cost cannot be bounded; "
                    "add it under `prices:`.", scope=scopes)
            max_out = requests[target].params["max_tokens"]
            worst = (bound * price.worst_input() + max_out * price.output) / MILLION_TOKENS
            return await budgets.hold(tool, session, worst)

        return guard

    def adopt(self, old: Router) -> None:
        """Carry state over from the router of the config this one replaces: the ledger, budget
        spending, the memory cache (same settings) and each kept target's breaker and latency."""
        if type(self.ledger) is type(old.ledger):  # not when a reload joins or leaves a cluster
            self.ledger = old.ledger
        if self.budgets is not None and type(self.budgets) is type(old.budgets):
            self.budgets.adopt(old.budgets)
        if (self.cache is not None and old.cache is not None and self._cache_settings == old._cache_settings
                and old._owns_cache):
            self.cache, old._owns_cache = old.cache, False
        for name, route in self._routes.items():
            previous = old._routes.get(name)
            if previous is None:
                continue
            before = {t.label: t for t in previous.targets}
            for target in route.targets:
                kept = before.get(target.label)
                if kept is None:
                    continue
                target.latency = kept.latency
                if target.breaker is not None and kept.breaker is not None:
                    target.breaker.adopt(kept.breaker)

    async def warm_up(self) -> None:
        """Run each provider's one-time set-up (`Preparable`) in a worker thread, so that no call
        pays it. A failure is logged and left for the calls to report (as a provider error)."""
        for name, provider in self._providers.items():
            if not isinstance(provider, Preparable):
                continue
            started = time.perf_counter()
            try:
                await anyio.to_thread.run_sync(provider.prepare, abandon_on_cancel=True)
            except Exception as exc:  # noqa: BLE001 - set-up must never stop a server
                log.warning("provider %s: set-up failed, its calls will retry it: %s", name, exc)
            else:
                log.debug("provider %s: ready (%.0f ms)", name, (time.perf_counter() - started) * 1000)

    async def aclose(self) -> None:
        await self.ledger.aclose()
        for provider in self._providers.values():
            await provider.aclose()
        if self.cache is not None and self._owns_cache:
            self._owns_cache = False
            await self.cache.aclose()


def answered_cost(attempts: tuple[Attempt, ...]) -> tuple[Decimal | None, int]:
    """An answered call's `cost_usd` (every attempt's known cost; None when the answer's is unknown)
    and how many other attempts' cost is unknown."""
    if len(attempts) == 1:  # the usual call, one attempt (the answer): the same sum, without generators
        cost = attempts[0].cost_usd
        return (None if cost is None else ZERO + cost), 0  # ZERO + keeps the sum's Decimal form
    answer = next(a for a in attempts if a.outcome == "ok")
    known = sum((a.cost_usd for a in attempts if a.cost_usd is not None), ZERO)
    unknown = sum(1 for a in attempts if a.cost_usd is None and a is not answer)
    return (None if answer.cost_usd is None else known), unknown


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
