"""Tool arguments from the command line, the same in every command: `--arg key=value` (repeatable)
and `--args '{...}'` (one JSON object).

`key=value` gives text, unless the tool's schema says the property is not a string, in which
case the value is read as JSON when it parses (so `--arg sentences=3` gives the integer 3);
`key:=value` is always JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

__all__ = ["arguments_options", "collect_arguments", "json_object_option"]


def arguments_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """`--arg KEY=VALUE` (as `pairs`) and `--args OBJECT` (as `json_args`)."""
    func = click.option("--args", "json_args", metavar="OBJECT",
                        help="All arguments as one JSON object; --arg values go over it.")(func)
    return click.option("--arg", "-a", "pairs", multiple=True, metavar="KEY=VALUE",
                        help="An argument; repeat for more. Text unless the schema says otherwise; "
                             "KEY:=JSON passes a JSON value.")(func)


def json_object_option(text: str, option: str) -> dict[str, Any]:
    """An option's value that must be a JSON object; a click usage error naming `option` if not."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint=option) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=option)
    return value


def collect_arguments(
    pairs: Sequence[str], json_text: str | None, schema: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    args: dict[str, Any] = json_object_option(json_text, "--args") if json_text else {}
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
