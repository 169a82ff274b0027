"""Model providers: one small adapter per wire format, behind the `Provider` protocol.

The adapters are imported on first use (most load the HTTP client stack)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from ._base import (
    Completion,
    CompletionRequest,
    FunctionTool,
    Message,
    OnText,
    Preparable,
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
    "Preparable",
    "Provider",
    "ProviderFactory",
    "ToolCall",
    "ToolChoice",
    "Usage",
    "provider_kinds",
]

_ADAPTERS = {"AnthropicProvider": ".anthropic", "GeminiProvider": ".gemini", "MockProvider": ".mock",
             "OllamaProvider": ".ollama", "OpenAIProvider": ".openai"}


__getattr__, __dir__ = lazy_exports(__name__, _ADAPTERS, globals())
