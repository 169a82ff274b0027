"""Circuit breakers whose open state is the cluster's: a target that failed on one process is
skipped by all, and after the cooldown one process (not every one) sends the probe.

Each process counts consecutive failures itself (no Redis round trip on the hot path); the
process whose count reaches `failures` opens the circuit and broadcasts it, with the cooldown
left, on the cluster's channel, so every process opens its own copy. When the cooldown is over a
process that wants to send a call claims the probe in Redis (`SET NX`, expiring after one
cooldown); the winner probes and broadcasts the outcome (closed, or open for another cooldown);
the others keep skipping the target until they hear it or the claim expires.

Redis down: each breaker works on its own, as in one process (a warning is logged).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ..routing._policy import Breaker
from ._link import RedisLink, is_outage

__all__ = ["SharedBreaker"]

class SharedBreaker(Breaker):
    """A `Breaker` that tells the cluster when it opens or closes (name: "<route>/<target label>")."""

    __slots__ = ("_claim", "_claim_until", "_link", "name")

    def __init__(self, name: str, failures: int, cooldown_s: float, link: RedisLink, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(failures, cooldown_s, clock=clock)
        self.name = name
        self._link = link
        self._claim: bool | None = None  # None: not asked yet this cooldown; False: another process has it
        self._claim_until = 0.0

    def admit(self) -> str | None:
        if self.state == "open" and self._clock() >= self._until:
            if self._claim is None:
                self._claim = False
                self._claim_until = self._clock() + self.cooldown_s
                if not self._link.spawn(self._claim_probe()):
                    self._claim = True  # no cluster runner (a library user): probe locally
            if not self._claim:
                if self._clock() >= self._claim_until:
                    self._claim = None  # the claimant never reported: ask again next time
                return None
        return super().admit()

    def success(self, ticket: str) -> None:
        closing = self.state != "closed" and ticket == "probe"
        super().success(ticket)
        if closing:
            self._claim = None
            self._broadcast({"state": "closed"})

    def _open(self) -> None:
        super()._open()
        self._claim = None
        self._broadcast({"state": "open", "cooldown_s": self.cooldown_s})

    def heard(self, message: dict[str, Any]) -> None:
        """Another process opened or closed this circuit."""
        if message.get("state") == "open":
            cooldown = float(message.get("cooldown_s", self.cooldown_s))
            self.state, self._count, self._until = "open", 0, self._clock() + cooldown
        elif message.get("state") == "closed":
            self.state, self._count = "closed", 0
        self._claim = None

    def _broadcast(self, body: dict[str, Any]) -> None:
        message = json.dumps({"kind": "breaker", "name": self.name, "from": self._link.process_id, **body})
        self._link.spawn(self._publish(message))

    async def _publish(self, message: str) -> None:
        try:
            await self._link.client.publish(self._link.key("events"), message)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._link.warn("circuit breakers", exc, "each process keeps its own breaker state until it answers")

    async def _claim_probe(self) -> None:
        try:
            won = await self._link.client.set(self._link.key("probe", self.name), self._link.process_id, nx=True,
                                              px=max(1, round(self.cooldown_s * 1000)))
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._link.warn("circuit breakers", exc, "probing locally")
            won = True
        if self.state == "open" and self._claim is False:
            self._claim = bool(won)
