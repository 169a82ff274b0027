"""Semantic versions: ordering, and what a pinned name such as `summarize.v1` or `summarize.v1.4.0` selects."""

from __future__ import annotations

import re

__all__ = ["major", "matches_pin", "version_key"]

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def version_key(version: str) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """Sort key of a semantic version: a pre-release sorts before its release (1.0.0-rc.1 < 1.0.0)."""
    match = _SEMVER.match(version)
    if match is None:  # the config model only admits semantic versions
        raise ValueError(f"not a semantic version: {version!r}")
    pre = match.group(4)
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split(".")) if pre else ()
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), 0 if pre else 1, parts  # type: ignore[return-value]


def major(version: str) -> int:
    return version_key(version)[0]


def matches_pin(version: str, pin: str) -> bool:
    """Whether `version` is selected by `pin`: the whole version, or a prefix of whole numeric parts
    ('1' selects 1.x.y, '1.4' selects 1.4.y)."""
    if version == pin:
        return True
    core = version.split("-", 1)[0].split("+", 1)[0]
    return re.fullmatch(r"\d+(\.\d+)?", pin) is not None and core.startswith(pin + ".")
