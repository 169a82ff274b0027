"""Single-flight: concurrent callers asking for the same expensive result share one computation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio

__all__ = ["SingleFlight"]

T = TypeVar("T")


@dataclass(slots=True)
class _Flight(Generic[T]):
    done: anyio.Event = field(default_factory=anyio.Event)
    value: T | None = None
    error: BaseException | None = None


class SingleFlight(Generic[T]):
    """`await flights.run(key, work)`: the first caller for `key` runs `work`; callers arriving
    while it runs wait for its result instead of running their own. Nothing is kept afterwards."""

    def __init__(self) -> None:
        self._running: dict[Hashable, _Flight[T]] = {}

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        flight = self._running.get(key)
        if flight is not None:
            await flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value  # type: ignore[return-value]
        flight = _Flight()
        self._running[key] = flight
        try:
            # Shielded: followers depend on this result, so a leader's cancellation must not strand them.
            with anyio.CancelScope(shield=True):
                flight.value = await work()
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            del self._running[key]
            flight.done.set()
