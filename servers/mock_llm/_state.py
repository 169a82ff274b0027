"""Per-app server state: request history, live counters and ``fail_first`` counters.

One instance lives on ``app.state.mock_llm`` so several apps (and test servers) never share state.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ._faults import FaultPlan

#: Header names whose values are secrets and are never stored.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie", "set-cookie"}
)
#: Query parameters whose values are secrets (Gemini accepts ``?key=``).
SECRET_QUERY = frozenset({"key", "api_key"})
REDACTED = "***"
#: Upper bound on distinct ``x-mock-key`` values remembered for ``fail_first``.
MAX_FAILURE_KEYS = 10_000


@dataclass(slots=True)
class Stats:
    """Live counters; ``disconnected`` counts requests whose client went away before the end."""

    in_flight: int = 0
    completed: int = 0
    disconnected: int = 0


class MockState:
    """Mutable state of one mock server; only touched from the event loop, so no locking."""

    def __init__(
        self, *, default_faults: FaultPlan, history_limit: int = 1000, require_auth: bool = False
    ) -> None:
        self.default_faults = default_faults
        self.require_auth = require_auth
        self.stats = Stats()
        self._history: deque[dict[str, Any]] = deque(maxlen=history_limit)
        self._failure_counts: OrderedDict[str, int] = OrderedDict()
        self._serials = itertools.count(1)

    def next_serial(self) -> str:
        """A short unique id fragment used in response ids (``chatcmpl-…``, ``msg_…``)."""
        return f"mock{next(self._serials):08d}"

    def record(
        self,
        *,
        wire: str,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: Any,
        peer: str | None = None,
    ) -> None:
        """Remember one provider request with secrets redacted (bounded: oldest entries drop off).

        ``peer`` is the client's ``host:port``: requests with the same peer came on one connection."""
        self._history.append(
            {
                "format": wire,
                "method": method,
                "path": path,
                "query": {k: (REDACTED if k.lower() in SECRET_QUERY else v) for k, v in query.items()},
                "headers": {k: (REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()},
                "body": body,
                "received_at": time.time(),
                "peer": peer,
            }
        )

    def history(self) -> list[dict[str, Any]]:
        return list(self._history)

    def count_failure_attempt(self, key: str) -> int:
        """Increment and return how many ``fail_first`` requests carried this ``x-mock-key``."""
        count = self._failure_counts.pop(key, 0) + 1
        self._failure_counts[key] = count
        while len(self._failure_counts) > MAX_FAILURE_KEYS:
            self._failure_counts.popitem(last=False)
        return count

    def stats_snapshot(self) -> dict[str, int]:
        return asdict(self.stats)

    def reset(self) -> None:
        """Forget history, finished-request counters and ``fail_first`` counters (in-flight stays live)."""
        self._history.clear()
        self._failure_counts.clear()
        self.stats.completed = 0
        self.stats.disconnected = 0
