"""JSON Schema, translated to what each provider's structured-output mechanism accepts.

* OpenAI `strict: true` needs every object closed (`additionalProperties: false`) with every
  property required, an object at the root, and none of `allOf`/`oneOf`/`not`/conditionals:
  `openai_strict_ok` says whether a schema already satisfies that (we never rewrite it, since
  making optional properties required would change what the gateway validates against).
* Gemini `responseSchema` is an OpenAPI 3.0 subset: `to_gemini_schema` inlines local `$ref`s,
  merges `allOf`, turns `oneOf` into `anyOf`, type lists and null branches into `nullable`,
  `const` into a one-value enum, exclusive bounds into inclusive ones (exact for integers),
  adds `propertyOrdering` (Gemini otherwise orders keys alphabetically) and drops what Gemini
  rejects (`additionalProperties`, `$schema`, `$defs`, `uniqueItems`, `multipleOf`, ...). What
  cannot be expressed (recursion, tuples, free-form objects, non-string enums are dropped)
  raises `Unsupported`; the Gemini adapter then sends `responseJsonSchema` instead.
* Anthropic tool `input_schema` must be an object: `wrap_root` wraps any other schema as the
  `value` property of an object (hoisting `$defs` and rewriting `$ref`s so they still resolve).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Unsupported", "is_object_schema", "merge_schemas", "nest", "openai_strict_ok", "to_gemini_schema",
           "wrap_root"]

_STRICT_FORBIDDEN = frozenset({"allOf", "oneOf", "not", "if", "then", "else", "dependentRequired",
                               "dependentSchemas", "patternProperties", "unevaluatedProperties"})
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains",
                  "unevaluatedProperties", "propertyNames", "additionalItems")


class Unsupported(ValueError):
    """The schema cannot be expressed in the target dialect."""


def is_object_schema(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "object" or (kind is None and "properties" in schema and "$ref" not in schema)


def _children(schema: Mapping[str, Any]) -> list[Any]:
    children: list[Any] = []
    for key in _SUBSCHEMA_MAPS:
        value = schema.get(key)
        if isinstance(value, Mapping):
            children.extend(value.values())
    for key in _SUBSCHEMA_LISTS:
        value = schema.get(key)
        if isinstance(value, list):
            children.extend(value)
    for key in _SUBSCHEMA_ONE:
        value = schema.get(key)
        if isinstance(value, list):
            children.extend(value)
        elif value is not None:
            children.append(value)
    return children


def openai_strict_ok(schema: Mapping[str, Any]) -> bool:
    """True when OpenAI would accept `schema` with `strict: true` as it stands."""
    if not is_object_schema(schema):
        return False
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if not isinstance(node, Mapping):  # e.g. the `false` of additionalProperties
            continue
        if _STRICT_FORBIDDEN & node.keys():
            return False
        kind = node.get("type")
        is_object = kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node
        if is_object:
            properties = node.get("properties") or {}
            if node.get("additionalProperties") is not False:
                return False
            if set(node.get("required") or []) != set(properties):
                return False
        pending.extend(_children(node))
    return True


# --------------------------------------------------------------------------- Gemini

_GEMINI_TYPES = {
    "string": "STRING", "number": "NUMBER", "integer": "INTEGER",
    "boolean": "BOOLEAN", "array": "ARRAY", "object": "OBJECT",
}
_GEMINI_FORMATS = {"STRING": {"enum", "date-time"}, "NUMBER": {"float", "double"}, "INTEGER": {"int32", "int64"}}
_MAX_DEPTH = 64


def to_gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` in Gemini's `responseSchema` dialect; raises `Unsupported` when it cannot be expressed."""
    return _Gemini(schema).convert(schema, (), 0)


class _Gemini:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    def resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise Unsupported(f"only local $ref can be inlined, not {ref!r}")
        node: Any = self.root
        for raw in ref[1:].lstrip("/").split("/") if ref not in ("#", "#/") else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise Unsupported(f"unresolvable $ref {ref!r}")
        return node

    def flatten(self, schema: Mapping[str, Any], refs: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
        """Inline `$ref` (refusing cycles) and merge `allOf` into one schema."""
        current = dict(schema)
        for _ in range(_MAX_DEPTH):
            if "$ref" in current:
                ref = current.pop("$ref")
                if ref in refs:
                    raise Unsupported("recursive schema ($ref cycle)")
                target = self.resolve(ref)
                if not isinstance(target, Mapping):
                    raise Unsupported(f"$ref {ref!r} is not a schema object")
                refs = (*refs, ref)
                current = merge_schemas(dict(target), current)
            elif isinstance(current.get("allOf"), list):
                parts = current.pop("allOf")
                for part in parts:
                    if not isinstance(part, Mapping):
                        raise Unsupported("boolean schema inside allOf")
                    flat, refs = self.flatten(part, refs)
                    current = merge_schemas(current, flat)
            else:
                return current, refs
        raise Unsupported("$ref chain too long")

    def convert(self, schema: Any, refs: tuple[str, ...], depth: int) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            raise Unsupported("schema nested too deeply")
        if not isinstance(schema, Mapping):
            raise Unsupported("boolean schemas have no Gemini equivalent")
        node, refs = self.flatten(schema, refs)
        nullable = node.get("nullable") is True
        branches = node.get("anyOf", node.get("oneOf"))
        if isinstance(branches, list) and branches:
            rest = {k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}
            options = []
            for branch in branches:
                if isinstance(branch, Mapping) and branch.get("type") == "null":
                    nullable = True
                    continue
                options.append(self.convert(merge_schemas(dict(rest), dict(branch)) if isinstance(branch, Mapping)
                                            else branch, refs, depth + 1))
            if not options:
                raise Unsupported("a schema that only allows null")
            out = options[0] if len(options) == 1 else {"anyOf": options}
            if nullable:
                out = {**out, "nullable": True}
            return out
        kinds = node.get("type")
        if isinstance(kinds, list):
            non_null = [k for k in kinds if k != "null"]
            nullable = nullable or len(non_null) < len(kinds)
            if not non_null:
                raise Unsupported("a schema that only allows null")
            if len(non_null) > 1:
                out = {"anyOf": [self.convert({**node, "type": k}, refs, depth + 1) for k in non_null]}
                return {**out, "nullable": True} if nullable else out
            kinds = non_null[0]
        if kinds is None:
            kinds = _infer_type(node)
        if kinds == "null":
            raise Unsupported("a schema that only allows null")
        gemini_type = _GEMINI_TYPES.get(str(kinds).lower())
        if gemini_type is None:
            raise Unsupported(f"unknown type {kinds!r}")
        out: dict[str, Any] = {"type": gemini_type}
        for key in ("title", "description"):
            if isinstance(node.get(key), str):
                out[key] = node[key]
        if nullable:
            out["nullable"] = True
        fmt = node.get("format")
        if isinstance(fmt, str) and fmt in _GEMINI_FORMATS.get(gemini_type, ()):
            out["format"] = fmt
        enum = node.get("enum")
        if "const" in node:
            enum = [node["const"]]
        if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum) and gemini_type == "STRING":
            out["enum"] = list(enum)
        if gemini_type == "STRING":
            for key in ("minLength", "maxLength"):
                if _is_int(node.get(key)):
                    out[key] = node[key]
            if isinstance(node.get("pattern"), str):
                out["pattern"] = node["pattern"]
        elif gemini_type in ("NUMBER", "INTEGER"):
            out.update(_bounds(node, integer=gemini_type == "INTEGER"))
        elif gemini_type == "ARRAY":
            if "prefixItems" in node or isinstance(node.get("items"), list):
                raise Unsupported("tuple arrays (prefixItems) have no Gemini equivalent")
            items = node.get("items")
            if items is None or items is True:
                raise Unsupported("arrays without an items schema")
            out["items"] = self.convert(items, refs, depth + 1)
            for key in ("minItems", "maxItems"):
                if _is_int(node.get(key)):
                    out[key] = node[key]
        elif gemini_type == "OBJECT":
            properties = node.get("properties")
            if not isinstance(properties, Mapping) or not properties:
                raise Unsupported("objects without properties (free-form maps)")
            out["properties"] = {name: self.convert(sub, refs, depth + 1) for name, sub in properties.items()}
            required = [r for r in node.get("required") or [] if r in properties]
            if required:
                out["required"] = required
            out["propertyOrdering"] = list(properties)
            for key in ("minProperties", "maxProperties"):
                if _is_int(node.get(key)):
                    out[key] = node[key]
        return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> float | int | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bounds(node: Mapping[str, Any], *, integer: bool) -> dict[str, Any]:
    """Inclusive minimum/maximum; exclusive bounds become inclusive (exact for integers)."""
    out: dict[str, Any] = {}
    low, high = _number(node.get("minimum")), _number(node.get("maximum"))
    ex_low, ex_high = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
    if ex_low is True and low is not None:  # draft 4
        ex_low, low = low, None
    if ex_high is True and high is not None:
        ex_high, high = high, None
    ex_low, ex_high = _number(ex_low), _number(ex_high)
    if ex_low is not None and (low is None or ex_low >= low):
        low = (int(ex_low) + 1 if float(ex_low).is_integer() else -(-ex_low // 1)) if integer else ex_low
    if ex_high is not None and (high is None or ex_high <= high):
        high = (int(ex_high) - 1 if float(ex_high).is_integer() else ex_high // 1) if integer else ex_high
    if low is not None:
        out["minimum"] = low
    if high is not None:
        out["maximum"] = high
    return out


def _infer_type(node: Mapping[str, Any]) -> str:
    if "properties" in node:
        return "object"
    if "items" in node or "prefixItems" in node:
        return "array"
    values = node.get("enum") if isinstance(node.get("enum"), list) else (
        [node["const"]] if "const" in node else None)
    if values:
        if all(isinstance(v, str) for v in values):
            return "string"
        if all(isinstance(v, bool) for v in values):
            return "boolean"
        if all(_is_int(v) for v in values):
            return "integer"
        if all(_number(v) is not None for v in values):
            return "number"
    raise Unsupported("a schema without a type")


def merge_schemas(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Combine schemas (allOf parts, $ref siblings): properties and required are unioned."""
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(merged.get(key), Mapping) and isinstance(value, Mapping):
            merged[key] = {**merged[key], **value}
        elif key == "required" and isinstance(merged.get(key), list) and isinstance(value, list):
            merged[key] = merged[key] + [item for item in value if item not in merged[key]]
        else:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------- wrapping


def wrap_root(schema: Mapping[str, Any], key: str = "value") -> dict[str, Any]:
    """An object schema whose single required property `key` holds `schema`.

    `$defs`/`definitions` move to the new root; every local `$ref` outside them is re-pointed
    into `#/properties/<key>` so references keep resolving.
    """
    inner = {k: v for k, v in schema.items() if k not in ("$defs", "definitions", "$schema", "$id")}
    wrapper: dict[str, Any] = {
        "type": "object",
        "properties": {key: _repoint(inner, f"#/properties/{key}")},
        "required": [key],
        "additionalProperties": False,
    }
    for defs in ("$defs", "definitions"):
        if isinstance(schema.get(defs), Mapping):
            wrapper[defs] = _repoint(schema[defs], f"#/properties/{key}")
    return wrapper


def nest(schema: Mapping[str, Any], pointer: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`schema` made ready to sit at JSON pointer `pointer` of a new root: (the schema without its
    `$defs`/`definitions`, those sections to put at the new root); local `$ref`s are re-pointed."""
    inner = {k: v for k, v in schema.items() if k not in ("$defs", "definitions", "$schema", "$id")}
    hoisted = {defs: _repoint(schema[defs], pointer) for defs in ("$defs", "definitions")
               if isinstance(schema.get(defs), Mapping)}
    return _repoint(inner, pointer), hoisted


def _repoint(node: Any, prefix: str) -> Any:
    if isinstance(node, list):
        return [_repoint(item, prefix) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith("#"):
            pointer = value[1:]
            if not (pointer.startswith("/$defs/") or pointer.startswith("/definitions/")):
                value = prefix + (pointer if pointer not in ("", "/") else "")
            out[key] = value
        else:
            out[key] = _repoint(value, prefix)
    return out
