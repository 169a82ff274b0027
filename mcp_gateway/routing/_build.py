"""Build providers and routes from a loaded config, resolving ${env:VAR} references.

Only providers that a served tool needs are built, so an unset key for an unused provider is no
error. A missing variable is reported by name; its value (when set) never appears anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .._errors import ConfigIssue
from ..config import LoadedConfig, Located, ProviderConfig
from ..providers import Provider, provider_kinds
from ._router import Route, Router

__all__ = ["build_router"]

_ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_SERVED = ("published", "deprecated")


def build_router(loaded: LoadedConfig, environ: Mapping[str, str]) -> tuple[Router, list[ConfigIssue]]:
    issues: list[ConfigIssue] = []
    kinds = provider_kinds()
    for name, item in loaded.providers.items():
        if item.value.kind not in kinds:
            issues.append(item.origin.issue(
                ("kind",), f"unknown provider kind '{item.value.kind}' (available: {', '.join(sorted(kinds))})"))
    needed_models = {t.value.model for t in loaded.tools if t.value.status in _SERVED}
    needed = {loaded.models[m].value.provider for m in needed_models if m in loaded.models}
    providers: dict[str, Provider] = {}
    for name in sorted(needed):
        item = loaded.providers.get(name)
        if item is None or item.value.kind not in kinds:
            continue
        provider = _build_provider(name, item, kinds[item.value.kind], environ, issues)
        if provider is not None:
            providers[name] = provider
    routes = {
        alias: Route(alias, providers[m.value.provider], m.value.model, m.value.params)
        for alias, m in loaded.models.items()
        if m.value.provider in providers
    }
    return Router(routes, providers), issues


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
            return _ENV_REF.sub(swap, value)
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
