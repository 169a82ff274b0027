"""Provider kinds: the built-ins and any installed plugin, behind one factory signature.

A plugin package registers a factory under the entry-point group `mcp_gateway.providers`;
the factory is called as `factory(name, settings, base_url=..., api_key=..., headers=...)`
and returns an object that satisfies `Provider`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from ._base import Provider
from .mock import MockProvider

__all__ = ["ProviderFactory", "provider_kinds"]

ProviderFactory = Callable[..., Provider]

_BUILTIN: dict[str, ProviderFactory] = {
    "mock": MockProvider.from_settings,
}


def provider_kinds() -> Mapping[str, ProviderFactory]:
    """Every provider kind available in this process, built-ins first (plugins cannot shadow them)."""
    kinds: dict[str, Any] = {}
    for ep in entry_points(group="mcp_gateway.providers"):
        kinds.setdefault(ep.name, _LazyFactory(ep))
    kinds.update(_BUILTIN)
    return kinds


class _LazyFactory:
    """Imports a plugin only when a config uses it, so a broken plugin cannot break start-up."""

    def __init__(self, ep: Any) -> None:
        self._ep = ep

    def __call__(self, *args: Any, **kwargs: Any) -> Provider:
        return self._ep.load()(*args, **kwargs)
