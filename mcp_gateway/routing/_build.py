"""Build providers and routes from a loaded config, resolving ${env:VAR} references.

Only providers that a served tool needs are built strictly, so an unset key for an unused provider
is no error. With the OpenAI-format API on, the other aliases' providers (every provider, with
`direct_models`) are built too, leniently: one that cannot be built leaves its aliases out of
that API, with the reason kept for its 404. A missing variable is reported by name; its value (when set) never appears anywhere.
Also built here: each target's price (bundled table under the config's `prices:`), the budgets
and the response cache store.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

from .._errors import ConfigIssue
from ..accounting import Budgets, PriceTable, price_warning
from ..cache import CacheStore, MemoryCache
from ..config import (
    ENV_REF,
    ChatApiConfig,
    LoadedConfig,
    Located,
    ModelConfig,
    Origin,
    ProviderConfig,
    resolve_env,
)
from ..config._models import OutputRepairConfig
from ..providers import Provider, provider_kinds
from ._policy import Breaker, RepairPolicy, RetryPolicy
from ._route import Route, Target
from ._router import Router

__all__ = ["build_router", "price_warnings", "repair_policy"]

log = logging.getLogger("mcp_gateway.routing")

_SERVED = ("published", "deprecated")
_ROOT_SECTIONS = ("prices", "budgets", "response_cache")
_UNBILLED = frozenset({"sampling"})  # the client's own model: not the gateway's cost, no warning


def build_router(
    loaded: LoadedConfig,
    environ: Mapping[str, str],
    *,
    every_route: bool = False,
    wrap_provider: Callable[[Provider], Provider] | None = None,
) -> tuple[Router, list[ConfigIssue]]:
    """Providers and routes for the served tools (`every_route`: for every model alias, as the test
    runner needs for drafts and `--model`). `wrap_provider` wraps each provider built (record/replay)."""
    issues: list[ConfigIssue] = []
    kinds = provider_kinds()
    for name, item in loaded.providers.items():
        if item.value.kind not in kinds:
            issues.append(item.origin.issue(
                ("kind",), f"unknown provider kind '{item.value.kind}' (available: {', '.join(sorted(kinds))})"))
    for alias, m in loaded.models.items():  # the loader checks only the first target of a route
        for sub, provider_name in m.value.provider_refs():
            if provider_name not in loaded.providers:
                issues.append(m.origin.issue(sub, _unknown("provider", provider_name, loaded.providers)))
    served = [t for t in loaded.tools if t.value.status in _SERVED]
    needed_models = set(loaded.models) if every_route else {t.value.model for t in served}
    needed = {target.provider for m in needed_models if m in loaded.models
              for target in loaded.models[m].value.all_targets()}
    providers: dict[str, Provider] = {}
    for name in sorted(needed):
        item = loaded.providers.get(name)
        if item is None or item.value.kind not in kinds:
            continue
        provider = _build_provider(name, item, kinds[item.value.kind], environ, issues)
        if provider is not None:
            providers[name] = wrap_provider(provider) if wrap_provider is not None else provider
    chat_api = loaded.chat_api.value if loaded.chat_api is not None else ChatApiConfig()
    unavailable: dict[str, str] = {}  # provider -> why it was not built (for the chat API's errors)
    if chat_api.enabled:
        extra = set(loaded.providers) if chat_api.direct_models else {
            target.provider for m in loaded.models.values() for target in m.value.all_targets()}
        for name in sorted(extra - set(providers)):
            item = loaded.providers.get(name)
            if item is None or item.value.kind not in kinds:
                continue
            lenient: list[ConfigIssue] = []
            provider = _build_provider(name, item, kinds[item.value.kind], environ, lenient)
            if provider is not None:
                providers[name] = provider
            elif lenient:
                unavailable[name] = lenient[0].message

    sections = _RootSections(loaded)
    prices, _ = sections.get("prices")
    table = PriceTable.bundled()
    if prices:
        table = table.with_overrides(prices)
    routes: dict[str, Route] = {}
    for alias, m in loaded.models.items():
        if all(t.provider in providers for t in m.value.all_targets()):
            routes[alias] = _route(alias, m.value, providers, loaded, table)
    unpriced = sorted({f"{t.provider.name}/{t.model}" for name in needed_models if name in routes
                       for t in routes[name].targets if t.price is None and t.kind not in _UNBILLED})
    if unpriced:
        log.warning("no price known for %s: costs are reported as unknown; add prices under `prices:`",
                    ", ".join(unpriced))

    budgets = _budgets(sections, loaded, served, routes, issues)
    cache, cache_settings = _cache(sections, served, environ, issues, chat_cache=chat_api.enabled
                                   and chat_api.cache_ttl_s is not None)
    router = Router(routes, providers, budgets=budgets, cache=cache, cache_settings=cache_settings)
    router.unavailable = {alias: unavailable[t.provider] for alias, m in loaded.models.items() if alias not in routes
                          for t in m.value.all_targets() if t.provider in unavailable}
    if chat_api.enabled and chat_api.direct_models:
        router.direct = _DirectTargets(providers, {n: p.value.kind for n, p in loaded.providers.items()}, table)
    return router, issues


def price_warnings(router: Router, models: Iterable[str], today: date) -> list[str]:
    """One line per target of the served `models` whose price is unknown, unverified or stale."""
    found: dict[str, str] = {}
    for name in models:
        route = router.routes.get(name)
        for target in route.targets if route is not None else ():
            if target.kind in _UNBILLED or target.label in found:
                continue
            if (why := price_warning(target.price, today)) is not None:
                found[target.label] = f"price of {target.provider.name}/{target.model} (model '{name}'): {why}"
    return list(found.values())


class _DirectTargets:
    """`<provider>/<model>` as a one-target route, built on first use (bounded)."""

    def __init__(self, providers: Mapping[str, Provider], kinds: Mapping[str, str], table: PriceTable) -> None:
        self._providers = providers
        self._kinds = kinds
        self._table = table
        self._routes: dict[str, Route] = {}

    def __call__(self, name: str) -> Route | None:
        route = self._routes.get(name)
        if route is not None:
            return route
        provider_name, sep, model = name.partition("/")
        provider = self._providers.get(provider_name)
        if not sep or not model or provider is None:
            return None
        kind = self._kinds.get(provider_name, "")
        target = Target(label=name, provider=provider, model=model, kind=kind,
                        price=self._table.lookup(model, provider=provider_name, kind=kind))
        route = Route(name, (target,))
        if len(self._routes) < 4096:
            self._routes[name] = route
        return route


def _route(alias: str, config: ModelConfig, providers: Mapping[str, Provider], loaded: LoadedConfig,
           table: PriceTable) -> Route:
    targets: list[Target] = []
    seen: dict[str, int] = {}
    for spec in config.all_targets():
        label = f"{spec.provider}/{spec.model}"
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label}#{seen[label]}"
        kind = loaded.providers[spec.provider].value.kind
        breaker = None
        if config.breaker is not None:
            breaker = Breaker(config.breaker.failures, config.breaker.cooldown_s)
        targets.append(Target(
            label=label, provider=providers[spec.provider], model=spec.model,
            params={**config.params, **spec.params}, kind=kind, weight=spec.weight,
            price=table.lookup(spec.model, provider=spec.provider, kind=kind), breaker=breaker,
        ))
    retry = RetryPolicy()
    if config.retry is not None:
        r = config.retry
        retry = RetryPolicy(r.attempts, r.base_delay_ms / 1000, r.max_delay_ms / 1000, r.max_retry_after_s)
    timeouts = config.timeouts
    return Route(
        alias, tuple(targets), strategy=config.strategy, merge=config.merge or "all", retry=retry,
        first_token_s=timeouts.first_token_s if timeouts else None,
        total_s=timeouts.total_s if timeouts else None,
        hedge_after_s=config.hedge_after_ms / 1000 if config.hedge_after_ms is not None else None,
        repair=repair_policy(config.output_repair) or RepairPolicy(),
    )


def repair_policy(config: OutputRepairConfig | None) -> RepairPolicy | None:
    return RepairPolicy(config.attempts, config.target) if config is not None else None


def _budgets(sections: _RootSections, loaded: LoadedConfig, served: list[Located[Any]],
             routes: Mapping[str, Route], issues: list[ConfigIssue]) -> Budgets | None:
    config, origin = sections.get("budgets")
    if config is None:
        return None
    tools = {t.value.name: t for t in loaded.tools}
    for name in config.per_tool:
        if name not in tools:
            issues.append(sections.issue(origin, ("per_tool", name), _unknown("tool", name, tools)))
    for tool in served:
        name = tool.value.name
        if config.total is None and config.per_session is None and name not in config.per_tool:
            continue
        route = routes.get(tool.value.model)
        if route is None:
            continue
        for index, target in enumerate(route.targets):
            if target.price is None:
                model = loaded.models[route.name]
                sub: tuple[str | int, ...] = ("targets", index, "model") if model.value.targets else ("model",)
                issues.append(model.origin.issue(sub, (
                    f"no price is known for model '{target.model}', and tool '{name}' has a budget: "
                    "add the model under `prices:` (USD per million tokens)")))
    return Budgets(config)


def _cache(sections: _RootSections, served: list[Located[Any]], environ: Mapping[str, str],
           issues: list[ConfigIssue], *, chat_cache: bool = False) -> tuple[CacheStore | None, Any]:
    config, origin = sections.get("response_cache")
    if config is None and not chat_cache and not any(t.value.cache is not None for t in served):
        return None, None
    if config is None or config.store == "memory":
        return MemoryCache(config.max_entries if config is not None else 10_000), config
    if not config.url:
        issues.append(sections.issue(origin, ("url",), "the redis store needs 'url', such as redis://127.0.0.1:6379/0"))
        return None, config
    url, missing = resolve_env(config.url, environ)
    if url is None:
        issues.append(sections.issue(origin, ("url",), f"environment variable {missing} is not set"))
        return None, config
    from ..cache._redis import RedisCache

    return RedisCache(url, prefix=config.prefix), config


class _RootSections:
    """Root-only sections of the config (`prices`, `budgets`, `response_cache`) with their origins."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded

    def get(self, key: str) -> tuple[Any, Origin | None]:
        located = getattr(self.loaded, key)
        return (located.value, located.origin) if located is not None else (None, None)

    def issue(self, origin: Origin | None, sub: tuple[str | int, ...], message: str) -> ConfigIssue:
        assert origin is not None  # only a configured section can be misconfigured
        return origin.issue(sub, message)


def _unknown(what: str, name: str, known: Mapping[str, Any]) -> str:
    message = f"unknown {what} '{name}'"
    close = difflib.get_close_matches(name, list(known), n=1)
    if close:
        return f"{message}; did you mean '{close[0]}'?"
    return f"{message} (defined: {', '.join(sorted(known)) or 'none'})"


def _build_provider(
    name: str, item: Located[ProviderConfig], factory: Any, environ: Mapping[str, str], issues: list[ConfigIssue]
) -> Provider | None:
    config = item.value
    before = len(issues)
    secrets: set[str] = set()

    def resolve(value: Any, sub: tuple[str | int, ...]) -> Any:
        if isinstance(value, str):
            def swap(match: re.Match[str]) -> str:
                var = match.group(1)
                if var not in environ:
                    issues.append(item.origin.issue(
                        sub, f"environment variable {var} is not set (provider '{name}' needs it)"))
                    return ""
                secrets.add(environ[var])
                return environ[var]
            return ENV_REF.sub(swap, value)
        if isinstance(value, Mapping):
            return {k: resolve(v, (*sub, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, (*sub, i)) for i, v in enumerate(value)]
        return value

    base_url = resolve(config.base_url, ("base_url",))
    api_key = resolve(config.api_key, ("api_key",))
    headers = resolve(config.headers, ("headers",))
    settings = resolve(config.settings, ("settings",))
    if len(issues) > before:
        return None
    try:
        return factory(name, settings, base_url=base_url, api_key=api_key, headers=headers)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        for secret in sorted(secrets, key=len, reverse=True):  # a factory may quote a bad value
            if secret:
                message = message.replace(secret, "***")
        issues.append(item.origin.issue(("settings",), f"provider '{name}': {message}"))
        return None
