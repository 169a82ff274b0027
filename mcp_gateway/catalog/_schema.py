"""JSON Schema validation with every violation reported by its JSON path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .._errors import Violation

__all__ = ["compile_validator", "json_path", "violations"]


def compile_validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """A validator for a schema already checked with `check_schema` (format assertions on)."""
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _short(error: ValidationError) -> str:
    message = error.message
    return message if len(message) <= 300 else message[:300] + "..."


def violations(validator: Draft202012Validator, value: Any) -> list[Violation]:
    """Every way `value` fails, sorted by path; messages are trimmed so huge values stay readable."""
    found = [Violation(json_path(e.absolute_path), _short(e)) for e in validator.iter_errors(value)]
    return sorted(found, key=lambda v: v.path)
