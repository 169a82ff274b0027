"""Model providers: one small adapter per wire format, behind the `Provider` protocol.

The adapters are imported on first use (most load the HTTP client stack)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._base import (
    Completion,
    CompletionRequest,
    FunctionTool,
    Message,
    OnText,
    Provider,
    ToolCall,
    ToolChoice,
    Usage,
)
from ._registry import ProviderFactory, provider_kinds

if TYPE_CHECKING:
    from .anthropic import AnthropicProvider
    from .gemini import GeminiProvider
    from .mock import MockProvider
    from .ollama import OllamaProvider
    from .openai import OpenAIProvider

__all__ = [
    "AnthropicProvider",
    "Completion",
    "CompletionRequest",
    "FunctionTool",
    "GeminiProvider",
    "Message",
    "MockProvider",
    "OllamaProvider",
    "OnText",
    "OpenAIProvider",
    "Provider",
    "ProviderFactory",
    "ToolCall",
    "ToolChoice",
    "Usage",
    "provider_kinds",
]

_ADAPTERS = {"AnthropicProvider": ".anthropic", "GeminiProvider": ".gemini", "MockProvider": ".mock",
             "OllamaProvider": ".ollama", "OpenAIProvider": ".openai"}


def __getattr__(name: str) -> Any:
    module = _ADAPTERS.get(name)
    if module is None:
        raise AttributeError(f"module 'mcp_gateway.providers' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value
