"""The per-target policies of a route: retry with backoff, the circuit breaker, observed latency.

Failure classes (by `ProviderError.kind`):

* never retried on the same target: bad_request, auth, quota, not_found, content_filter (and any
  error not marked `retryable`); the route still moves on to its next target;
* neutral for the circuit breaker (a fault of the request, not of the target): bad_request,
  content_filter;
* free (the provider refused the request before doing model work, so nothing is billed):
  rate_limit, quota, auth, bad_request, not_found, overloaded, connect, and a `server` error
  that came as an HTTP status. Any other failure may have been billed: its cost is unknown,
  unless the provider reported the usage of the failed answer (`empty`, `content_filter`).

`empty` (a 200 with no content) is retryable (unless it ran out of tokens: finish `length`) and
counts against the target's breaker: the provider did answer, with nothing usable, and another
try or target usually does better.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from .._errors import ProviderError

__all__ = ["Breaker", "LatencyStats", "RepairPolicy", "RetryPolicy", "is_free", "is_neutral", "may_retry"]

NEVER_RETRY = frozenset({"bad_request", "auth", "quota", "not_found", "content_filter"})
NEUTRAL = frozenset({"bad_request", "content_filter"})
FREE = frozenset({"rate_limit", "quota", "auth", "bad_request", "not_found", "overloaded", "connect"})


def may_retry(error: ProviderError) -> bool:
    return error.retryable and error.kind not in NEVER_RETRY and not error.output_started


def is_neutral(error: ProviderError) -> bool:
    return error.kind in NEUTRAL


def is_free(error: ProviderError) -> bool:
    if error.output_started:
        return False
    return error.kind in FREE or (error.kind == "server" and error.status is not None)


@dataclass(frozen=True, slots=True)
class RepairPolicy:
    """Retries of an answer that fails the tool's output schema: `attempts` more routed calls, each
    with the validation errors given back; `target` "same" asks the target that answered first,
    "next" asks the route's other targets first."""

    attempts: int = 1
    target: str = "same"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` tries per target (the first included); waits use exponential backoff with full jitter."""

    attempts: int = 1
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0
    max_retry_after_s: float = 10.0

    def backoff(self, tries: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2^(tries-1))]."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** min(tries - 1, 60)))
        return rng.uniform(0.0, cap)

    def next_delay(self, tries: int, error: ProviderError, rng: random.Random) -> float | None:
        """Seconds to wait before trying the same target again, or None to move on.

        A provider's `retry_after` is honoured (the wait is at least that long) when it is at most
        `max_retry_after_s`; a longer requested wait moves on to the next target instead.
        """
        if tries >= self.attempts or not may_retry(error):
            return None
        wait = self.backoff(tries, rng)
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after_s:
                return None
            wait = max(wait, error.retry_after)
        return wait


class Breaker:
    """A circuit breaker: `failures` consecutive failures open it; while open the target is skipped;
    after `cooldown_s` one call is let through as a probe (half-open): success closes the circuit,
    failure opens it for another cooldown."""

    __slots__ = ("_clock", "_count", "_until", "cooldown_s", "failures", "state")

    def __init__(self, failures: int, cooldown_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.state = "closed"  # closed | open | half_open (a probe is out)
        self._count = 0
        self._until = 0.0

    def admit(self) -> str | None:
        """"closed" (a normal call), "probe" (the one half-open call), or None (skip the target)."""
        if self.state == "closed":
            return "closed"
        if self.state == "open" and self._clock() >= self._until:
            self.state = "half_open"
            return "probe"
        return None

    def retry_in(self) -> float:
        """Seconds until a probe may go (0 when closed or half-open)."""
        return max(0.0, self._until - self._clock()) if self.state == "open" else 0.0

    def success(self, ticket: str) -> None:
        if ticket == "probe" or self.state == "closed":
            self.state, self._count = "closed", 0

    def failure(self, ticket: str) -> None:
        if ticket == "probe":
            self._open()
        elif self.state == "closed":
            self._count += 1
            if self._count >= self.failures:
                self._open()

    def release(self, ticket: str) -> None:
        """The call ended without a verdict (cancelled, refused by a budget): let another probe go now."""
        if ticket == "probe" and self.state == "half_open":
            self.state, self._until = "open", self._clock()

    def adopt(self, old: Breaker) -> None:
        self.state, self._count, self._until = old.state, old._count, old._until

    def _open(self) -> None:
        self.state, self._count, self._until = "open", 0, self._clock() + self.cooldown_s


class LatencyStats:
    """Exponentially weighted moving average of a target's call duration (None until observed)."""

    __slots__ = ("alpha", "samples", "value")

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self.value: float | None = None
        self.samples = 0

    def observe(self, seconds: float) -> None:
        self.samples += 1
        self.value = seconds if self.value is None else self.value + self.alpha * (seconds - self.value)

    def penalise(self, seconds: float) -> None:
        """A failure counts as a slow call: at least twice the current average."""
        self.observe(max(seconds, 2 * (self.value if self.value is not None else seconds)))
