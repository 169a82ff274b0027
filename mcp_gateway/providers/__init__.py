"""Model providers: one small adapter per wire format, behind the `Provider` protocol."""

from ._base import Completion, CompletionRequest, Message, OnText, Provider, Usage
from ._registry import ProviderFactory, provider_kinds
from .anthropic import AnthropicProvider
from .gemini import GeminiProvider
from .mock import MockProvider
from .ollama import OllamaProvider
from .openai import OpenAIProvider

__all__ = [
    "AnthropicProvider",
    "Completion",
    "CompletionRequest",
    "GeminiProvider",
    "Message",
    "MockProvider",
    "OllamaProvider",
    "OnText",
    "OpenAIProvider",
    "Provider",
    "ProviderFactory",
    "Usage",
    "provider_kinds",
]
