"""Fault-spec parsing: turns ``x-mock-fault`` style strings into an immutable :class:`FaultPlan`.

Kept free of HTTP and wire-format knowledge so the same syntax works for the CLI flag, the
environment variable, the request header, the query parameter and the model-name convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

#: Default duration of the ``stall`` fault: long enough that only a client disconnect ends it.
DEFAULT_STALL_MS = 300_000.0

_FLAG_FAULTS = frozenset({"malformed", "no_end", "empty", "off_schema"})


class FaultSyntaxError(ValueError):
    """A fault spec could not be parsed; the message names the offending token."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Everything a single request should suffer, resolved from all fault sources.

    ``error`` is ``"quota"`` or an HTTP status (``"429"``, ``"503"``...) as text.
    ``fail_first`` is ``(n, plan)``: apply ``plan`` to the first ``n`` requests of one ``x-mock-key``.
    """

    latency_ms: float = 0.0
    first_token_delay_ms: float = 0.0
    chunk_delay_ms: float = 0.0
    error: str | None = None
    retry_after_s: float = 1.0
    malformed: bool = False
    cut: bool = False
    cut_after: int | None = None
    no_end: bool = False
    stall_ms: float | None = None
    empty: bool = False
    off_schema: bool = False
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    fail_first: tuple[int, FaultPlan] | None = None

    def overlay(self, other: FaultPlan) -> FaultPlan:
        """Return this plan with every non-default setting of ``other`` applied on top."""
        changes = {
            name: getattr(other, name)
            for name in self.__dataclass_fields__
            if getattr(other, name) != FaultPlan.__dataclass_fields__[name].default
        }
        return replace(self, **changes)


def parse_faults(spec: str | None, base: FaultPlan | None = None, *, nested: bool = False) -> FaultPlan:
    """Parse a comma separated fault spec on top of ``base`` (later tokens win; ``none`` resets).

    ``nested`` is used for the ``FAULT`` part of ``fail_first=N:FAULT``, where tokens are joined
    by ``+`` and ``fail_first`` itself is not allowed.
    """
    plan = base if base is not None else FaultPlan()
    if not spec:
        return plan
    separator = "+" if nested else ","
    for raw_token in spec.split(separator):
        token = raw_token.strip()
        if token:
            plan = _apply_token(plan, token, nested=nested)
    return plan


def _apply_token(plan: FaultPlan, token: str, *, nested: bool) -> FaultPlan:
    name, has_value, value = token.partition("=")
    name = name.strip().lower()
    value = value.strip()
    if name == "none" and not has_value:
        return FaultPlan()
    if name.isdigit() and not has_value:
        status = int(name)
        if not 400 <= status <= 599:
            raise FaultSyntaxError(f"error status must be 400-599, got {token!r}")
        return replace(plan, error=str(status))
    if name == "quota" and not has_value:
        return replace(plan, error="quota")
    if name in _FLAG_FAULTS:
        if has_value:
            raise FaultSyntaxError(f"fault {name!r} takes no value")
        if name == "malformed":
            return replace(plan, malformed=True)
        if name == "off_schema":
            return replace(plan, off_schema=True)
        return replace(plan, no_end=True) if name == "no_end" else replace(plan, empty=True)
    if name == "latency":
        return replace(plan, latency_ms=_number(token, value))
    if name == "first_token_delay":
        return replace(plan, first_token_delay_ms=_number(token, value))
    if name == "chunk_delay":
        return replace(plan, chunk_delay_ms=_number(token, value))
    if name == "cached_tokens":
        return replace(plan, cached_tokens=_count(token, value))
    if name == "reasoning_tokens":
        return replace(plan, reasoning_tokens=_count(token, value))
    if name == "stall":
        return replace(plan, stall_ms=_number(token, value) if has_value else DEFAULT_STALL_MS)
    if name == "cut":
        return replace(plan, cut=True, cut_after=_count(token, value) if has_value else None)
    if name == "retry_after":
        return replace(plan, retry_after_s=_number(token, value))
    if name == "fail_first":
        if nested:
            raise FaultSyntaxError("fail_first cannot be nested")
        return replace(plan, fail_first=_fail_first(token, value))
    raise FaultSyntaxError(f"unknown fault {token!r}")


def _fail_first(token: str, value: str) -> tuple[int, FaultPlan]:
    count_text, colon, fault_text = value.partition(":")
    if not colon or not fault_text.strip():
        raise FaultSyntaxError(f"expected fail_first=N:FAULT, got {token!r}")
    return _count(token, count_text), parse_faults(fault_text, nested=True)


def _number(token: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise FaultSyntaxError(f"expected a number in {token!r}") from None
    if not math.isfinite(number) or number < 0:
        raise FaultSyntaxError(f"expected a non-negative number in {token!r}")
    return number


def _count(token: str, value: str) -> int:
    try:
        count = int(value.strip())
    except ValueError:
        raise FaultSyntaxError(f"expected an integer in {token!r}") from None
    if count < 0:
        raise FaultSyntaxError(f"expected a non-negative integer in {token!r}")
    return count
