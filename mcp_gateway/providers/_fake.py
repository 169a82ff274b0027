"""Deterministic stand-ins for model output, shared by the offline provider and the mock LLM server.

Same input, same output, on any machine: the text is built from the prompt itself, and a JSON
Schema gets an instance made from its own constraints, with choices picked by a hash of the prompt.
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

from ._schemas import merge_schemas

__all__ = [
    "SchemaInstanceError",
    "answer_text",
    "instance_for_schema",
    "prompt_words",
    "seed_of",
]


def seed_of(text: str) -> int:
    """A stable integer derived from `text` (not Python's randomised hash)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def answer_text(model: str, prompt: str, *, max_words: int = 40) -> str:
    """A readable, deterministic answer that echoes the start of the prompt's last message."""
    words = prompt.split()  # runs of non-whitespace (str.isspace), as the regex \S+ finds them
    head = " ".join(words[:max_words])
    more = " ..." if len(words) > max_words else ""
    return f"[{model}] Offline answer to a {len(words)}-word prompt: {head}{more}"


def prompt_words(text: str, *, limit: int = 200) -> list[str]:
    """The words of `text` without surrounding punctuation: material for generated strings."""
    words = (w.strip(".,;:!?\"'()[]{}") for w in text.split()[:limit])
    return [w for w in words if w]


class SchemaInstanceError(ValueError):
    """The schema admits no value this generator can build (`false`, an unresolvable `$ref`, ...)."""


def instance_for_schema(schema: Any, seed: int = 0, *, words: Sequence[str] = ()) -> Any:
    """A value valid against `schema`, chosen deterministically by `seed` (strings drawn from `words`).

    Supported: `type` (also lists, and OpenAPI's upper-case names and `nullable`), `const`, `enum`,
    `default` (when it is a scalar of the right type), `properties`/`required`/
    `additionalProperties`/`minProperties`, `items`/`prefixItems` (and draft-4 tuple `items` with
    `additionalItems`), `minItems`/`maxItems`/`uniqueItems`, `minLength`/`maxLength`, common
    `format`s, `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum` (numeric and draft-4
    boolean forms), `multipleOf`, `allOf` (merged), `anyOf`/`oneOf` (first branch), local `$ref`
    (`#`, `#/$defs/..`, `#/definitions/..`, any JSON pointer) including recursive schemas, and
    integer keywords written as strings (Gemini's int64). Not honoured: `pattern`, `not`,
    conditionals. Raises `SchemaInstanceError` when no value can be built.
    """
    return _Instance(schema, seed, [w for w in words if w]).value(schema, 0, "value", 0)


#: Past this depth optional properties and optional array items are left out (ends recursion).
_OPTIONAL_DEPTH = 6
#: Past this depth the schema's *required* structure is taken to be infinitely recursive.
_HARD_DEPTH = 64
_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "email": "someone@example.com",
    "idn-email": "someone@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "/example",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "duration": "P1D",
}
_SCALARS = {"string": str, "integer": int, "number": (int, float), "boolean": bool}
#: A `default` is used only where no constraint could make it invalid.
_CONSTRAINTS = frozenset({"minLength", "maxLength", "pattern", "format", "minimum", "maximum",
                          "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})


class _Instance:
    """One walk over a schema. Scalars vary with `seed`, the property name and `variant` (the index
    of an array item), so items of one array differ (uniqueItems) and output is stable."""

    def __init__(self, root: Any, seed: int, words: list[str]) -> None:
        self.root = root
        self.seed = seed
        self.words = words

    def choice(self, name: str, variant: int) -> int:
        """A small, stable number: seed and name pick the start, `variant` steps from there."""
        return (self.seed + zlib.crc32(name.encode("utf-8"))) % 97 + variant

    def value(self, schema: Any, depth: int, name: str, variant: int) -> Any:
        if depth > _HARD_DEPTH:
            raise SchemaInstanceError("schema recursion too deep (a required part refers to itself)")
        if schema is True or schema is None:
            return self._string({}, name, variant)
        if schema is False:
            raise SchemaInstanceError("schema 'false' accepts no value")
        if not isinstance(schema, Mapping):
            raise SchemaInstanceError(f"a schema must be an object, not {type(schema).__name__}")
        schema = self.flatten(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            options = schema["enum"]
            return options[self.choice(name, variant) % len(options)]
        kind = _pick_type(schema)
        default = schema.get("default")
        scalar = _SCALARS.get(kind)
        if "default" in schema and scalar is not None and isinstance(default, scalar) \
                and (kind == "boolean" or not isinstance(default, bool)) and not _CONSTRAINTS & schema.keys():
            return default
        if kind == "null":
            return None
        if kind == "object":
            return self._object(schema, depth, variant)
        if kind == "array":
            return self._array(schema, depth, name)
        if kind == "integer":
            return self._integer(schema, name, variant)
        if kind == "number":
            return self._number(schema, name, variant)
        if kind == "boolean":
            return self.choice(name, variant) % 2 == 0
        return self._string(schema, name, variant)

    def flatten(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        """Resolve `$ref`, merge `allOf` and take the first `anyOf`/`oneOf` branch, into one schema."""
        current: Any = schema
        for _ in range(_HARD_DEPTH):
            if "$ref" in current:
                target = self.resolve(current["$ref"])
                siblings = {k: v for k, v in current.items() if k != "$ref"}
                current = merge_schemas(dict(target), siblings) if isinstance(target, Mapping) else target
            elif isinstance(current.get("allOf"), list):
                merged = {k: v for k, v in current.items() if k != "allOf"}
                for part in current["allOf"]:
                    merged = merge_schemas(merged, self.flatten(part) if isinstance(part, Mapping) else {})
                current = merged
            else:
                key = "anyOf" if isinstance(current.get("anyOf"), list) else "oneOf"
                branches = current.get(key)
                if not isinstance(branches, list) or not branches:
                    return dict(current)
                rest = {k: v for k, v in current.items() if k != key}
                first = branches[0]
                current = merge_schemas(rest, first) if isinstance(first, Mapping) else first
            if current is True:
                return {}
            if not isinstance(current, Mapping):
                raise SchemaInstanceError(f"cannot satisfy the sub-schema {current!r}")
        raise SchemaInstanceError("$ref chain too long")

    def resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise SchemaInstanceError(f"only local $ref is supported, not {ref!r}")
        node = self.root
        pointer = ref[1:]
        if pointer in ("", "/"):
            return node
        for raw in pointer.lstrip("/").split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaInstanceError(f"unresolvable $ref {ref!r}")
        return node

    def _object(self, schema: Mapping[str, Any], depth: int, variant: int) -> dict[str, Any]:
        properties = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
        required = [r for r in schema.get("required") or [] if isinstance(r, str)]
        extra = schema.get("additionalProperties", True)
        result: dict[str, Any] = {}
        for prop, sub in properties.items():
            if depth < _OPTIONAL_DEPTH or prop in required:
                result[prop] = self.value(sub, depth + 1, prop, variant)
        for prop in required:
            if prop not in result:
                result[prop] = self.value(extra if isinstance(extra, Mapping) else True, depth + 1, prop, 0)
        wanted, index = _int(schema.get("minProperties")) or 0, 0
        while len(result) < wanted and extra is not False:
            key = f"extra_{index}"
            index += 1
            if key not in result:
                result[key] = self.value(extra if isinstance(extra, Mapping) else True, depth + 1, key, 0)
        return result

    def _array(self, schema: Mapping[str, Any], depth: int, name: str) -> list[Any]:
        prefix, items = schema.get("prefixItems"), schema.get("items", True)
        if isinstance(items, list):  # draft-4 tuple form
            prefix, items = items, schema.get("additionalItems", True)
        prefix = prefix if isinstance(prefix, list) else []
        low, high = _int(schema.get("minItems")) or 0, _int(schema.get("maxItems"))
        count = max(low, len(prefix), 1 if depth < _OPTIONAL_DEPTH else 0)
        if items is False:
            count = min(count, len(prefix))
        if high is not None:
            count = min(count, high)
        values = [
            self.value(prefix[i] if i < len(prefix) else items, depth + 1, name, i) for i in range(count)
        ]
        if schema.get("uniqueItems"):
            unique = [v for i, v in enumerate(values) if v not in values[:i]]
            values = unique if len(unique) >= low else values
        return values

    def _string(self, schema: Mapping[str, Any], name: str, variant: int) -> str:
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            text = _FORMATS[fmt]
            if variant and fmt == "uuid":
                text = text[:-12] + f"{variant:012x}"
            elif variant and fmt == "email":
                text = f"someone{variant}@example.com"
        else:
            if self.words:
                start = self.choice(name, 0) % len(self.words)
                text = " ".join(self.words[start : start + 3])
            else:
                text = f"sample {name}"
            if variant:
                text = f"{text} {variant}"
        low, high = _int(schema.get("minLength")) or 0, _int(schema.get("maxLength"))
        if len(text) < low:
            text += "x" * (low - len(text))
        if high is not None and len(text) > high:
            text = text[:high] if not variant else (str(variant) + text)[:high]
        return text

    def _integer(self, schema: Mapping[str, Any], name: str, variant: int) -> int:
        low, low_ex, high, high_ex = _bounds(schema)
        lo = None if low is None else (math.floor(low) + 1 if low_ex else math.ceil(low))
        hi = None if high is None else (math.ceil(high) - 1 if high_ex else math.floor(high))
        step = _float(schema.get("multipleOf"))
        if step is not None and step > 0 and not float(step).is_integer():
            step = float(Fraction(step).limit_denominator(10**9).numerator)  # integers divisible by it
        unit = int(step) if step is not None and step > 0 else 1
        first = None if lo is None else -(-lo // unit)
        last = None if hi is None else hi // unit
        k = self.choice(name, variant)
        if first is not None and last is not None:
            multiple = first + k % max(last - first + 1, 1)
        elif first is not None:
            multiple = first + k
        elif last is not None:
            multiple = last - k
        else:
            multiple = k
        return multiple * unit

    def _number(self, schema: Mapping[str, Any], name: str, variant: int) -> float | int:
        low, low_ex, high, high_ex = _bounds(schema)
        step = _float(schema.get("multipleOf"))
        k = self.choice(name, variant)
        if step is not None and step > 0:
            first = None if low is None else math.ceil(low / step)
            if first is not None and low_ex and first * step <= low:
                first += 1
            last = None if high is None else math.floor(high / step)
            if last is not None and high_ex and last * step >= high:
                last -= 1
            if first is not None and last is not None:
                multiple = first + k % max(last - first + 1, 1)
            else:
                multiple = first + k if first is not None else (last - k if last is not None else k)
            value: float = multiple * step
        elif low is not None and high is not None:
            value = low + (high - low) * (k % 1000 + 1) / 1002
        elif low is not None:
            value = low + k + (0.5 if low_ex else 0)
        elif high is not None:
            value = high - k - (0.5 if high_ex else 0)
        else:
            value = float(k)
        return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _pick_type(schema: Mapping[str, Any]) -> str:
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


def _int(value: Any) -> int | None:
    """An integer keyword; Gemini's OpenAPI schemas send int64 values as strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _bounds(schema: Mapping[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """(low, low_exclusive, high, high_exclusive) across the draft-4 and later spellings."""
    low, high = _float(schema.get("minimum")), _float(schema.get("maximum"))
    low_ex = high_ex = False
    ex_min, ex_max = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    ex_low, ex_high = _float(ex_min), _float(ex_max)
    if ex_min is True:
        low_ex = low is not None
    elif ex_low is not None and (low is None or ex_low >= low):
        low, low_ex = ex_low, True
    if ex_max is True:
        high_ex = high is not None
    elif ex_high is not None and (high is None or ex_high <= high):
        high, high_ex = ex_high, True
    return low, low_ex, high, high_ex
