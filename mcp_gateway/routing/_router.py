"""Model aliases resolved to a provider and model, and the one place a provider is called."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import GatewayError, ProviderError
from ..providers import Completion, CompletionRequest, Message, OnText, Provider

__all__ = ["Route", "Router"]


@dataclass(frozen=True, slots=True)
class Route:
    """A model alias: the provider that serves it, its model id and default parameters."""

    name: str
    provider: Provider
    model: str
    params: Mapping[str, Any] = field(default_factory=dict)


class Router:
    """Sends a rendered prompt to the route a tool names."""

    def __init__(self, routes: Mapping[str, Route], providers: Mapping[str, Provider]) -> None:
        self._routes = dict(routes)
        self._providers = dict(providers)

    def route(self, name: str) -> Route:
        return self._routes[name]

    async def complete(
        self,
        route_name: str,
        messages: tuple[Message, ...],
        *,
        params: Mapping[str, Any],
        output_schema: Mapping[str, Any] | None = None,
        on_text: OnText | None = None,
    ) -> tuple[Route, Completion]:
        """Call the route's provider; every failure comes back as `ProviderError`."""
        route = self._routes[route_name]
        request = CompletionRequest(
            model=route.model,
            messages=messages,
            params={**route.params, **params},
            output_schema=output_schema,
        )
        try:
            return route, await route.provider.complete(request, on_text=on_text)
        except GatewayError:
            raise
        except Exception as exc:  # the provider boundary: nothing foreign escapes it
            raise ProviderError(route.provider.name, f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
