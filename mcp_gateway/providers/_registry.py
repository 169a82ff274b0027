"""Provider kinds: the built-ins and any installed plugin, behind one factory signature.

Built-in kinds: `mock` (offline), `sampling` (the MCP client's own model), the native HTTP adapters `openai` (also every OpenAI-compatible
server), `anthropic`, `gemini`, `ollama`, and `litellm` (only usable when the litellm package is
installed; imported lazily). `base_url` convention: for `openai` it includes the version prefix
(`https://api.openai.com/v1`, `http://localhost:8000/v1`); for the others it is the server root
(`https://api.anthropic.com`, `https://generativelanguage.googleapis.com`, `http://localhost:11434`).

A plugin package registers a factory under the entry-point group `mcp_gateway.providers`;
the factory is called as `factory(name, settings, base_url=..., api_key=..., headers=...)`
and returns an object that satisfies `Provider`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any

from ._base import Provider

__all__ = ["ProviderFactory", "provider_kinds"]

ProviderFactory = Callable[..., Provider]


def _litellm(*args: Any, **kwargs: Any) -> Provider:
    from ._litellm import litellm_factory  # litellm itself is imported only if installed and used

    return litellm_factory(*args, **kwargs)


def _builtin(module: str, cls: str) -> ProviderFactory:
    """A built-in adapter's factory, imported when a config uses the kind: a config of mock
    providers never loads the HTTP client stack."""

    def factory(*args: Any, **kwargs: Any) -> Provider:
        adapter = getattr(import_module(module, __package__), cls)
        return adapter.from_settings(*args, **kwargs)  # type: ignore[no-any-return]

    return factory


_BUILTIN: dict[str, ProviderFactory] = {
    "mock": _builtin(".mock", "MockProvider"),
    "openai": _builtin(".openai", "OpenAIProvider"),
    "anthropic": _builtin(".anthropic", "AnthropicProvider"),
    "gemini": _builtin(".gemini", "GeminiProvider"),
    "ollama": _builtin(".ollama", "OllamaProvider"),
    "sampling": _builtin(".sampling", "SamplingProvider"),
    "litellm": _litellm,
}


def provider_kinds() -> Mapping[str, ProviderFactory]:
    """Every provider kind available in this process, built-ins first (plugins cannot shadow them)."""
    from importlib.metadata import entry_points  # slow to import; only when a config is built

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
