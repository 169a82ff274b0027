"""Model providers: one small adapter per wire format, behind the `Provider` protocol."""

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
