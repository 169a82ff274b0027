"""Offline token estimates: no tokenizer files, no downloads, the same number everywhere."""

from __future__ import annotations

import math

__all__ = ["estimate_tokens"]


def estimate_tokens(text: str) -> int:
    """About four characters a token (the usual rule of thumb for English with BPE tokenizers)."""
    return math.ceil(len(text) / 4) if text else 0
