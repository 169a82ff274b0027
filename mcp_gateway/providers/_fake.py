"""Deterministic stand-ins for model output, shared by the offline provider and the mock LLM server.

Same input, same output, on any machine: the text is built from the prompt itself, and a JSON
Schema gets an instance made from its own constraints, with choices picked by a hash of the prompt.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["answer_text", "estimate_tokens", "instance_for_schema", "seed_of"]

_WORD = re.compile(r"\S+")


def seed_of(text: str) -> int:
    """A stable integer derived from `text` (not Python's randomised hash)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def estimate_tokens(text: str) -> int:
    """Offline token estimate: about four characters a token, at least one for non-empty text."""
    return math.ceil(len(text) / 4) if text else 0


def answer_text(model: str, prompt: str, *, max_words: int = 40) -> str:
    """A readable, deterministic answer that echoes the start of the prompt's last message."""
    words = _WORD.findall(prompt)
    head = " ".join(words[:max_words])
    more = " ..." if len(words) > max_words else ""
    return f"[{model}] Offline answer to a {len(words)}-word prompt: {head}{more}"


def instance_for_schema(schema: Mapping[str, Any], seed: int, *, words: Sequence[str] = ()) -> Any:
    """A value valid against `schema` (the common keywords), chosen deterministically by `seed`."""
    return _Instance(schema, seed, list(words) or ["sample"]).make(schema, 0)


class _Instance:
    def __init__(self, root: Mapping[str, Any], seed: int, words: list[str]) -> None:
        self.root = root
        self.seed = seed
        self.words = words
        self.counter = 0

    def pick(self, n: int) -> int:
        self.counter += 1
        return (self.seed + self.counter * 2654435761) % n if n > 0 else 0

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = self.root
            for part in ref[2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
            merged = dict(target)
            merged.update({k: v for k, v in schema.items() if k != "$ref"})
            return merged
        return schema

    def make(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, Mapping):
            return None
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema and schema["enum"]:
            return schema["enum"][self.pick(len(schema["enum"]))]
        if "default" in schema:
            return schema["default"]
        for key in ("oneOf", "anyOf"):
            if schema.get(key):
                return self.make(schema[key][0], depth + 1)
        if schema.get("allOf"):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged.update(self.resolve(part))
            return self.make(merged, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        return getattr(self, f"_{kind}", self._string)(schema, depth)

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties", {})
        required = list(schema.get("required", []))
        names = required + [n for n in props if n not in required] if depth < 4 else required
        return {name: self.make(props.get(name, {"type": "string"}), depth + 1) for name in names}

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        low = int(schema.get("minItems", 1 if depth < 4 else 0))
        high = int(schema.get("maxItems", max(low, 3)))
        count = max(low, min(high, low + self.pick(3)))
        items = schema.get("items", {"type": "string"})
        values = [self.make(items, depth + 1) for _ in range(count)]
        if schema.get("uniqueItems"):
            values = [v for i, v in enumerate(values) if v not in values[:i]][: max(count, 1)]
        return values

    def _string(self, schema: Mapping[str, Any], depth: int) -> str:
        fmt = schema.get("format")
        if fmt == "date-time":
            return "2026-01-01T00:00:00Z"
        if fmt == "date":
            return "2026-01-01"
        if fmt == "email":
            return "someone@example.com"
        if fmt in ("uri", "url"):
            return "https://example.com/"
        start = self.pick(len(self.words))
        text = " ".join(self.words[start : start + 3]) or "sample"
        low = int(schema.get("minLength", 0))
        high = int(schema.get("maxLength", max(low, 200)))
        while len(text) < low:
            text += " " + text
        return text[:high]

    def _integer(self, schema: Mapping[str, Any], depth: int) -> int:
        low = math.ceil(schema.get("minimum", 0))
        if "exclusiveMinimum" in schema:
            low = math.floor(schema["exclusiveMinimum"]) + 1
        high = math.floor(schema.get("maximum", low + 100))
        if "exclusiveMaximum" in schema:
            high = math.ceil(schema["exclusiveMaximum"]) - 1
        return low + self.pick(max(high - low + 1, 1))

    def _number(self, schema: Mapping[str, Any], depth: int) -> float:
        low = float(schema.get("minimum", schema.get("exclusiveMinimum", 0.0)))
        high = float(schema.get("maximum", schema.get("exclusiveMaximum", low + 1.0)))
        return low + (high - low) * (self.pick(1000) + 1) / 1002

    def _boolean(self, schema: Mapping[str, Any], depth: int) -> bool:
        return self.pick(2) == 1

    def _null(self, schema: Mapping[str, Any], depth: int) -> None:
        return None
