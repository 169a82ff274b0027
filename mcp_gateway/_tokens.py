"""Offline token estimates: no tokenizer files, no downloads, the same number everywhere."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["estimate_tokens", "estimate_total"]


def estimate_tokens(text: str) -> int:
    """About four characters a token (the usual rule of thumb for English with BPE tokenizers),
    rounded up: ceil(len / 4), in integers."""
    return (len(text) + 3) // 4 if text else 0


def estimate_total(texts: Iterable[str]) -> int:
    """The estimates of several texts (each rounded up on its own, as each message is), added."""
    return sum([(len(text) + 3) // 4 for text in texts])
