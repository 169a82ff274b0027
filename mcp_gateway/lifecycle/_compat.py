"""Is a schema change safe for the callers of a published tool? Each change classified, with a reason.

Arguments flow from callers to the tool, so a new input schema must accept every call the old
one accepted: removing a property, requiring a new one, narrowing a type or an enum, or
tightening a bound breaks callers. Answers flow the other way, so a new output schema must only
produce answers the old one promised: removing a property, making one optional, widening a type
or an enum, or loosening a bound breaks the code that reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["SchemaChange", "compare_schemas"]

Direction = Literal["input", "output"]

_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


@dataclass(frozen=True, slots=True)
class SchemaChange:
    path: str  # where in the schema, e.g. input_schema.properties.sentences
    message: str
    breaking: bool

    def __str__(self) -> str:
        return f"{'BREAKING' if self.breaking else 'compatible'}: {self.path}: {self.message}"


def compare_schemas(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, *, direction: Direction,
                    path: str) -> list[SchemaChange]:
    """Every change from `old` to `new`, classified for `direction`."""
    if old is None and new is None:
        return []
    if old is None:
        return [SchemaChange(path, "structured output added", False)] if direction == "output" else \
            [SchemaChange(path, "input schema added", True)]
    if new is None:
        return [SchemaChange(path, "structured output removed: callers reading structuredContent get none", True)]
    changes: list[SchemaChange] = []
    _node(old, new, direction, path, changes)
    return changes


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    found = {kind} if isinstance(kind, str) else set(kind)
    if "number" in found:
        found.add("integer")  # every integer is a number
    return found


def _node(old: Mapping[str, Any], new: Mapping[str, Any], direction: Direction, path: str,
          out: list[SchemaChange]) -> None:
    # `narrower` holds what a change that narrows the schema means here: breaking for input, safe for output.
    narrowing_breaks = direction == "input"

    def add(message: str, narrows: bool) -> None:
        out.append(SchemaChange(path, message, narrows == narrowing_breaks))

    old_types, new_types = _types(old), _types(new)
    if old_types != new_types:
        shown = f"{old.get('type', 'any')} -> {new.get('type', 'any')}"
        if new_types is None or (old_types is not None and old_types < new_types):
            add(f"type widened ({shown})", narrows=False)
        elif old_types is None or new_types < old_types:
            add(f"type narrowed ({shown})", narrows=True)
        else:
            out.append(SchemaChange(path, f"type changed ({shown})", True))
    _enum(old.get("enum"), new.get("enum"), add)
    for key in _LOWER_BOUNDS:
        _bound(key, old.get(key), new.get(key), add, tighter=lambda o, n: n > o)
    for key in _UPPER_BOUNDS:
        _bound(key, old.get(key), new.get(key), add, tighter=lambda o, n: n < o)
    if old.get("pattern") != new.get("pattern"):
        if old.get("pattern") is None:
            add(f"pattern {new['pattern']!r} added", narrows=True)
        elif new.get("pattern") is None:
            add("pattern removed", narrows=False)
        else:
            out.append(SchemaChange(path, f"pattern changed ({old['pattern']!r} -> {new['pattern']!r})", True))
    _properties(old, new, direction, path, out, add)
    old_items, new_items = old.get("items"), new.get("items")
    if isinstance(old_items, Mapping) and isinstance(new_items, Mapping):
        _node(old_items, new_items, direction, f"{path}.items", out)


def _enum(old: Any, new: Any, add: Any) -> None:
    if old == new:
        return
    if new is None:
        add("enum removed (any value now)", narrows=False)
    elif old is None:
        add(f"enum added ({', '.join(map(str, new))})", narrows=True)
    else:
        gone = [v for v in old if v not in new]
        extra = [v for v in new if v not in old]
        if gone:
            add(f"enum values removed: {', '.join(map(str, gone))}", narrows=True)
        if extra:
            add(f"enum values added: {', '.join(map(str, extra))}", narrows=False)


def _bound(key: str, old: Any, new: Any, add: Any, *, tighter: Any) -> None:
    if old == new:
        return
    if old is None:
        add(f"{key} {new} added", narrows=True)
    elif new is None:
        add(f"{key} {old} removed", narrows=False)
    else:
        add(f"{key} {old} -> {new}", narrows=bool(tighter(old, new)))


def _properties(old: Mapping[str, Any], new: Mapping[str, Any], direction: Direction, path: str,
                out: list[SchemaChange], add: Any) -> None:
    old_props: Mapping[str, Any] = old.get("properties") or {}
    new_props: Mapping[str, Any] = new.get("properties") or {}
    old_required, new_required = set(old.get("required") or ()), set(new.get("required") or ())
    for name in old_props:
        if name not in new_props:
            message = ("property removed: callers that send it are refused or ignored" if direction == "input"
                       else "property removed from the answer: code reading it breaks")
            out.append(SchemaChange(f"{path}.properties.{name}", message, True))
    for name in new_props:
        if name in old_props:
            continue
        where = f"{path}.properties.{name}"
        if direction == "input":
            required = name in new_required
            out.append(SchemaChange(where, "new required property: existing calls lack it" if required
                                    else "optional property added", required))
        else:
            out.append(SchemaChange(where, "property added to the answer", False))
    for name in sorted(new_required - old_required):
        if name in old_props:
            add(f"property '{name}' is now required", narrows=True)
    for name in sorted(old_required - new_required):
        if name in new_props:
            add(f"property '{name}' is no longer required", narrows=False)
    old_extra, new_extra = old.get("additionalProperties", True), new.get("additionalProperties", True)
    if old_extra is not False and new_extra is False:
        add("additionalProperties now false", narrows=True)
    elif old_extra is False and new_extra is not False:
        add("additionalProperties now allowed", narrows=False)
    for name in old_props:
        if name in new_props and isinstance(old_props[name], Mapping) and isinstance(new_props[name], Mapping):
            _node(old_props[name], new_props[name], direction, f"{path}.properties.{name}", out)
