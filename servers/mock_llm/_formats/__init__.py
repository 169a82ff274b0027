"""The four emulated provider dialects; each module is one provider's request/response shapes."""

from ._base import StreamScript, WireFormat
from .anthropic import AnthropicMessages
from .gemini import GeminiGenerateContent
from .ollama import OllamaChat
from .openai import OpenAIChat

__all__ = [
    "AnthropicMessages",
    "GeminiGenerateContent",
    "OllamaChat",
    "OpenAIChat",
    "StreamScript",
    "WireFormat",
]
