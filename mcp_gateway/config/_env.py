"""`${env:VAR}` references: the one way config values name secrets and deployment settings."""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["ENV_REF", "resolve_env"]

ENV_REF = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_env(value: str, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """`(value with every reference replaced, None)`, or `(None, first unset variable's name)`."""
    missing = next((name for name in ENV_REF.findall(value) if name not in environ), None)
    if missing is not None:
        return None, missing
    return ENV_REF.sub(lambda m: environ[m.group(1)], value), None
