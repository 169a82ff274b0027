"""Model providers: one small adapter per wire format, behind the `Provider` protocol."""

from ._base import Completion, CompletionRequest, Message, OnText, Provider, Usage
from ._registry import ProviderFactory, provider_kinds
from .mock import MockProvider

__all__ = [
    "Completion",
    "CompletionRequest",
    "Message",
    "MockProvider",
    "OnText",
    "Provider",
    "ProviderFactory",
    "Usage",
    "provider_kinds",
]
