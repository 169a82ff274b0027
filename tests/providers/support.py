"""Constants and helpers shared by the provider adapter tests."""

from __future__ import annotations

KEY = "sk-test-DISTINCTIVE-7f3a9c2e41b8"
"""A distinctive API key: it must never show up in an error message or a repr."""

KINDS = ("openai", "anthropic", "gemini", "ollama")


def base_url_for(kind: str, root: str) -> str:
    """The documented convention: `openai` includes the version prefix, the others are the root."""
    return f"{root}/v1" if kind == "openai" else root
