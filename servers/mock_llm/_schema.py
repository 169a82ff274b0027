"""Deterministic JSON-Schema instance generator.

Structured-output requests (OpenAI ``json_schema``, Gemini ``responseSchema``, Ollama ``format``,
Anthropic forced tools) must get an answer that validates, so the gateway's own validation can be
tested end to end.  This is a small, dependency-free generator: same schema in, same value out.

Supported: ``type`` (also lists and upper-case OpenAPI names), ``nullable``, ``const``, ``enum``,
``properties``/``required``/``additionalProperties``/``minProperties``, ``items``/``prefixItems``
(and draft-4 tuple ``items``), ``minItems``/``maxItems``/``uniqueItems``, ``minLength``/``maxLength``,
common ``format`` values, ``minimum``/``maximum`` (inclusive and exclusive), ``multipleOf``,
``allOf`` (merged), ``anyOf``/``oneOf`` (first branch) and local ``$ref`` (``#``, ``#/$defs/...``,
``#/definitions/...`` or any JSON pointer into the root schema).  ``pattern`` is not honoured.
"""

from __future__ import annotations

import math
from typing import Any

#: Past this depth optional properties and optional array items are left out (ends recursion).
_OPTIONAL_DEPTH = 8
#: Past this depth we give up (a schema whose *required* structure is infinitely recursive).
_HARD_DEPTH = 64

_FORMAT_SAMPLES = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00Z",
    "email": "mock@example.com",
    "idn-email": "mock@example.com",
    "uri": "https://example.com/mock",
    "url": "https://example.com/mock",
    "iri": "https://example.com/mock",
    "uri-reference": "/mock",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "duration": "P1D",
}


class SchemaInstanceError(ValueError):
    """The schema cannot be satisfied by this generator (e.g. unresolvable ``$ref``)."""


def instance_for(schema: Any) -> Any:
    """Return a deterministic value that validates against ``schema``."""
    return _Generator(schema).value(schema, depth=0, name="value", variant=0)


class _Generator:
    """Walks one schema; holds the root so ``$ref`` pointers can be resolved."""

    def __init__(self, root: Any) -> None:
        self._root = root

    def value(self, schema: Any, *, depth: int, name: str, variant: int) -> Any:
        if depth > _HARD_DEPTH:
            raise SchemaInstanceError("schema recursion too deep")
        if schema is True or schema is None:
            return "mock"
        if schema is False:
            raise SchemaInstanceError("schema 'false' accepts no value")
        if not isinstance(schema, dict):
            raise SchemaInstanceError(f"schema must be an object, got {type(schema).__name__}")
        schema = self._flatten(schema, depth)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            options = schema["enum"]
            return options[variant % len(options)]
        kind = _pick_type(schema)
        if kind == "null":
            return None
        if kind == "object":
            return self._object(schema, depth, variant)
        if kind == "array":
            return self._array(schema, depth, name)
        if kind == "integer":
            return _integer(schema, variant)
        if kind == "number":
            return _number(schema, variant)
        if kind == "boolean":
            return variant % 2 == 0
        return _string(schema, name, variant)

    def _flatten(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        """Resolve ``$ref``, ``allOf`` and the first ``anyOf``/``oneOf`` branch into one schema."""
        current: Any = schema
        for _ in range(_HARD_DEPTH):
            if "$ref" in current:
                target = self._resolve(current["$ref"])
                siblings = {k: v for k, v in current.items() if k != "$ref"}
                current = _merge(target, siblings) if isinstance(target, dict) else target
            elif isinstance(current.get("allOf"), list):
                merged = {k: v for k, v in current.items() if k != "allOf"}
                for part in current["allOf"]:
                    merged = _merge(merged, self._flatten(part, depth) if isinstance(part, dict) else {})
                current = merged
            else:
                branch_key = "anyOf" if isinstance(current.get("anyOf"), list) else "oneOf"
                branches = current.get(branch_key)
                if not isinstance(branches, list) or not branches:
                    return dict(current)
                rest = {k: v for k, v in current.items() if k != branch_key}
                first = branches[0]
                current = _merge(rest, first) if isinstance(first, dict) else first
            if current is True:
                return {}
            if not isinstance(current, dict):
                raise SchemaInstanceError(f"cannot satisfy sub-schema {current!r}")
        raise SchemaInstanceError("$ref chain too long")

    def _resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaInstanceError(f"only local $ref is supported, got {ref!r}")
        node = self._root
        pointer = ref[1:]
        if pointer in ("", "/"):
            return node
        for raw in pointer.lstrip("/").split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaInstanceError(f"unresolvable $ref {ref!r}")
        return node

    def _object(self, schema: dict[str, Any], depth: int, variant: int) -> dict[str, Any]:
        raw_properties, raw_required = schema.get("properties"), schema.get("required")
        properties: dict[str, Any] = raw_properties if isinstance(raw_properties, dict) else {}
        required = [r for r in raw_required if isinstance(r, str)] if isinstance(raw_required, list) else []
        extra_schema = schema.get("additionalProperties", True)
        result: dict[str, Any] = {}
        for prop, sub in properties.items():
            if depth < _OPTIONAL_DEPTH or prop in required:
                result[prop] = self.value(sub, depth=depth + 1, name=prop, variant=variant)
        for prop in required:
            if prop not in result:
                result[prop] = self._extra_value(extra_schema, depth, prop)
        wanted = _int_or_none(schema.get("minProperties")) or 0
        index = 0
        while len(result) < wanted and extra_schema is not False:
            key = f"extra_{index}"
            index += 1
            if key not in result:
                result[key] = self._extra_value(extra_schema, depth, key)
        return result

    def _extra_value(self, extra_schema: Any, depth: int, name: str) -> Any:
        sub = extra_schema if isinstance(extra_schema, dict) else True
        return self.value(sub, depth=depth + 1, name=name, variant=0)

    def _array(self, schema: dict[str, Any], depth: int, name: str) -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items", True)
        if isinstance(items, list):  # draft-4 tuple form
            prefix, items = items, schema.get("additionalItems", True)
        prefix = prefix if isinstance(prefix, list) else []
        minimum = _int_or_none(schema.get("minItems")) or 0
        maximum = _int_or_none(schema.get("maxItems"))
        count = max(minimum, len(prefix), 1 if depth < _OPTIONAL_DEPTH else 0)
        if items is False:
            count = min(count, len(prefix))
        if maximum is not None:
            count = min(count, maximum)
        result = []
        for index in range(count):
            sub = prefix[index] if index < len(prefix) else items
            result.append(self.value(sub, depth=depth + 1, name=name, variant=index))
        return result


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Combine two schemas for ``allOf``/``$ref`` siblings: union properties and required."""
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = {**merged[key], **value}
        elif key == "required" and isinstance(merged.get(key), list) and isinstance(value, list):
            merged[key] = merged[key] + [item for item in value if item not in merged[key]]
        else:
            merged[key] = value
    return merged


def _pick_type(schema: dict[str, Any]) -> str:
    declared = schema.get("type")
    if isinstance(declared, str):
        return declared.lower()
    if isinstance(declared, list):
        names = [t.lower() for t in declared if isinstance(t, str)]
        non_null = [t for t in names if t != "null"]
        return non_null[0] if non_null else (names[0] if names else "string")
    if any(k in schema for k in ("properties", "required", "additionalProperties", "minProperties")):
        return "object"
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def _int_or_none(value: Any) -> int | None:
    """Read an integer keyword; Gemini's OpenAPI schemas send int64 values as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _bounds(schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """Return (low, low_exclusive, high, high_exclusive) across draft-4 and later spellings."""
    low, high = _float_or_none(schema.get("minimum")), _float_or_none(schema.get("maximum"))
    low_excl = high_excl = False
    ex_min, ex_max = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    ex_low, ex_high = _float_or_none(ex_min), _float_or_none(ex_max)
    if ex_min is True:
        low_excl = low is not None
    elif ex_low is not None and (low is None or ex_low >= low):
        low, low_excl = ex_low, True
    if ex_max is True:
        high_excl = high is not None
    elif ex_high is not None and (high is None or ex_high <= high):
        high, high_excl = ex_high, True
    return low, low_excl, high, high_excl


def _integer(schema: dict[str, Any], variant: int) -> int:
    low, low_excl, high, high_excl = _bounds(schema)
    lo = None if low is None else (math.floor(low) + 1 if low_excl else math.ceil(low))
    hi = None if high is None else (math.ceil(high) - 1 if high_excl else math.floor(high))
    value = variant
    if lo is not None:
        value = max(value, lo + variant)
    if hi is not None:
        value = min(value, hi)
    step = _float_or_none(schema.get("multipleOf"))
    if step and step > 0:
        candidate = math.ceil(value / step) * step
        if hi is not None and candidate > hi:
            candidate = math.floor(value / step) * step
        if float(candidate).is_integer():
            value = int(candidate)
    return int(value)


def _number(schema: dict[str, Any], variant: int) -> float | int:
    low, low_excl, high, high_excl = _bounds(schema)
    value: float = float(variant)
    if low is not None and (value < low or (low_excl and value <= low)):
        value = low
        if low_excl:
            gap = 1.0 if high is None else (high - low) / 2
            value = low + gap
    if high is not None and (value > high or (high_excl and value >= high)):
        value = high
        if high_excl:
            gap = 1.0 if low is None else (high - low) / 2
            value = high - gap
    step = _float_or_none(schema.get("multipleOf"))
    if step and step > 0:
        candidate = math.ceil(value / step) * step
        if high is not None and (candidate > high or (high_excl and candidate >= high)):
            candidate = math.floor(value / step) * step
        value = candidate
    return int(value) if float(value).is_integer() else value


def _string(schema: dict[str, Any], name: str, variant: int) -> str:
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMAT_SAMPLES:
        text = _FORMAT_SAMPLES[fmt]
        if variant and fmt == "uuid":
            text = text[:-12] + f"{variant:012x}"
    else:
        text = f"mock {name}" if variant == 0 else f"mock {name} {variant}"
    min_length = _int_or_none(schema.get("minLength")) or 0
    max_length = _int_or_none(schema.get("maxLength"))
    if len(text) < min_length:
        text = text + "x" * (min_length - len(text))
    if max_length is not None and len(text) > max_length:
        text = text[:max_length] if variant == 0 else (str(variant) + text)[:max_length]
    return text
