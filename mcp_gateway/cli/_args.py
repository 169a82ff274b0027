"""Tool arguments from the command line: `--arg key=value` and `--json '{...}'`.

`key=value` gives text, unless the tool's schema says the property is not a string, in which
case the value is read as JSON when it parses (so `--arg sentences=3` gives the integer 3);
`key:=value` is always JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import click

__all__ = ["collect_arguments"]


def collect_arguments(
    pairs: Sequence[str], json_text: str | None, schema: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if json_text:
        try:
            loaded = json.loads(json_text)
        except ValueError as exc:
            raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--json") from None
        if not isinstance(loaded, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--json")
        args.update(loaded)
    properties: Mapping[str, Any] = (schema or {}).get("properties", {})
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.rstrip(":"):
            raise click.BadParameter(f"expected key=value or key:=json, got {pair!r}", param_hint="--arg")
        if key.endswith(":"):
            key = key[:-1]
            try:
                args[key] = json.loads(raw)
            except ValueError as exc:
                raise click.BadParameter(f"{key}: not valid JSON: {exc}", param_hint="--arg") from None
        else:
            args[key] = _by_schema(raw, properties.get(key))
    return args


def _by_schema(raw: str, spec: Any) -> Any:
    kind = spec.get("type") if isinstance(spec, Mapping) else "string"
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if "string" in kinds or kind is None:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # the schema check then says what type was expected
