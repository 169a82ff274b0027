"""Budgets: reserve a call's worst-case cost before it is sent, settle to the actual cost after.

Reserving and checking happen in one synchronous step (no await between them, one event loop),
so concurrent calls can never jointly spend more than a budget: each call holds its worst case
until it settles, and a call whose worst case does not fit in what is left is refused with
`BudgetExceededError` before any provider sees it.

Scopes: `total` (the process), `per_tool` (by tool name), `per_session` (each session on its
own; the newest `max_sessions` sessions are remembered). A limit with `window_s` counts only
what was settled in that many seconds before now (a sliding window); reservations always count.
State is per process: several gateway processes each keep their own (a `cluster:` section
shares them through Redis instead: `mcp_gateway.cluster`). `hold` and `Reservation.close` are
the asynchronous surface the router uses, common to both.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from .._errors import GatewayError

__all__ = [
    "BudgetExceededError", "BudgetHold", "BudgetStore", "BudgetUnavailableError", "Budgets", "Reservation", "format_usd",
]

ZERO = Decimal(0)


def format_usd(amount: Decimal) -> str:
    """$0.0012, $3, $12.5: up to 6 decimals, no trailing zeros."""
    text = f"{amount.quantize(Decimal('0.000001')):f}".rstrip("0").rstrip(".")
    return f"${text or '0'}"


class BudgetExceededError(GatewayError):
    """A call was refused: its worst-case cost does not fit in what is left of a budget.

    `scope` names the budget ("tool 'x'", "session 'y'", "the gateway (total)"); the amounts are
    Decimal USD (None when the refusal has another reason, such as a model without a price).
    """

    def __init__(self, message: str, *, scope: str, needed: Decimal | None = None,
                 available: Decimal | None = None, limit: Decimal | None = None,
                 window_s: float | None = None) -> None:
        self.scope = scope
        self.needed_usd = needed
        self.available_usd = available
        self.limit_usd = limit
        self.window_s = window_s
        super().__init__(message)

    @classmethod
    def over(cls, scope: str, *, needed: Decimal, available: Decimal, limit: Decimal,
             window_s: float | None = None) -> BudgetExceededError:
        window = f" per {window_s:g} s" if window_s else ""
        message = (
            f"Budget exceeded for {scope}: this call may cost up to {format_usd(needed)}, and "
            f"{format_usd(max(available, ZERO))} of {format_usd(limit)}{window} is left."
        )
        return cls(message, scope=scope, needed=needed, available=available, limit=limit, window_s=window_s)


class BudgetUnavailableError(BudgetExceededError):
    """A budget could not be checked (a cluster's shared store is unreachable): the call is refused,
    since an unchecked budget could be overspent."""


class BudgetHold(Protocol):
    """A call's hold on its budgets (`Reservation`, or a cluster's shared hold)."""

    amount: Decimal

    async def close(self, actual: Decimal | None = None) -> None:
        """Release the hold and charge `actual` (None: unknown, charge the whole hold)."""
        ...


class BudgetStore(Protocol):
    """What the router needs of budgets: `Budgets` here, `SharedBudgets` in a cluster."""

    config: Any
    max_tokens: int

    def applies(self, tool: str | None, session: str | None) -> bool: ...

    def scopes(self, tool: str | None, session: str | None) -> str: ...

    async def hold(self, tool: str | None, session: str | None, amount: Decimal) -> BudgetHold:
        """Hold `amount` on every budget that applies, or raise BudgetExceededError."""
        ...

    def adopt(self, old: Any) -> None: ...


class _Account:
    """One limit: what is reserved now and what was settled (in the window, if any)."""

    __slots__ = ("events", "limit", "reserved", "scope", "spent", "window")

    def __init__(self, scope: str, limit: Decimal, window: float | None) -> None:
        self.scope = scope
        self.limit = limit
        self.window = window
        self.reserved = ZERO
        self.spent = ZERO
        self.events: deque[tuple[float, Decimal]] = deque()

    def available(self, now: float) -> Decimal:
        if self.window is not None:
            horizon = now - self.window
            events = self.events
            while events and events[0][0] <= horizon:
                self.spent -= events.popleft()[1]
        return self.limit - self.reserved - self.spent

    def charge(self, amount: Decimal, now: float) -> None:
        self.spent += amount
        if self.window is not None and amount:
            self.events.append((now, amount))


class Reservation:
    """A call's hold on its budgets; `settle` it exactly once (with the actual cost)."""

    __slots__ = ("_accounts", "_clock", "amount", "settled")

    def __init__(self, accounts: list[_Account], amount: Decimal, clock: Callable[[], float]) -> None:
        self._accounts = accounts
        self._clock = clock
        self.amount = amount
        self.settled = False

    def settle(self, actual: Decimal | None = None) -> None:
        """Release the hold and charge `actual` (None: the cost is unknown, charge the whole hold)."""
        if self.settled:
            return
        self.settled = True
        spent = self.amount if actual is None else actual
        now = self._clock()
        for account in self._accounts:
            account.reserved -= self.amount
            account.charge(spent, now)

    async def close(self, actual: Decimal | None = None) -> None:
        """`settle`, as the router calls it (shared budgets settle in Redis)."""
        self.settle(actual)


class Budgets:
    """The budgets of one config, with their spending so far."""

    def __init__(self, config: Any, *, clock: Callable[[], float] = time.monotonic,
                 max_sessions: int = 100_000) -> None:
        self.config = config
        self.max_tokens: int = config.max_tokens
        self._clock = clock
        self._max_sessions = max_sessions
        self._total = _limit_account("the gateway (total)", config.total)
        self._tools = {name: _limit_account(f"tool '{name}'", lim) for name, lim in config.per_tool.items()}
        self._session_limit = config.per_session
        self._sessions: OrderedDict[str, _Account] = OrderedDict()

    def scopes(self, tool: str | None, session: str | None) -> str:
        """The budgets that apply, for messages: "tool 'x', session 'y'"."""
        return ", ".join(a.scope for a in self._accounts(tool, session))

    def applies(self, tool: str | None, session: str | None) -> bool:
        return (
            self._total is not None
            or (tool is not None and tool in self._tools)
            or (session is not None and self._session_limit is not None)
        )

    def reserve(self, tool: str | None, session: str | None, amount: Decimal) -> Reservation:
        """Hold `amount` on every budget that applies, or raise BudgetExceededError (holding nothing)."""
        accounts = self._accounts(tool, session)
        now = self._clock()
        for account in accounts:
            available = account.available(now)
            if amount > available:
                raise BudgetExceededError.over(account.scope, needed=amount, available=available,
                                               limit=account.limit, window_s=account.window)
        for account in accounts:
            account.reserved += amount
        return Reservation(accounts, amount, self._clock)

    async def hold(self, tool: str | None, session: str | None, amount: Decimal) -> Reservation:
        """`reserve`, as the router calls it (shared budgets reserve in Redis)."""
        return self.reserve(tool, session, amount)

    def remaining(self, tool: str | None = None, session: str | None = None) -> Decimal | None:
        """The least that is left of the budgets that apply (None: no budget applies)."""
        accounts = self._accounts(tool, session)
        now = self._clock()
        return min((a.available(now) for a in accounts), default=None)

    def adopt(self, old: Budgets) -> None:
        """Carry over what an earlier config's budgets have spent and reserved, scope by scope."""
        pairs = [(self._total, old._total)] + [(acc, old._tools.get(name)) for name, acc in self._tools.items()]
        for new, previous in pairs:
            if new is not None and previous is not None:
                new.reserved, new.spent, new.events = previous.reserved, previous.spent, previous.events
        if self._session_limit is not None:
            for session, previous in old._sessions.items():
                account = self._session(session)
                account.reserved, account.spent, account.events = previous.reserved, previous.spent, previous.events

    def _accounts(self, tool: str | None, session: str | None) -> list[_Account]:
        accounts: list[_Account] = []
        if self._total is not None:
            accounts.append(self._total)
        if tool is not None and (account := self._tools.get(tool)) is not None:
            accounts.append(account)
        if session is not None and self._session_limit is not None:
            accounts.append(self._session(session))
        return accounts

    def _session(self, session: str) -> _Account:
        account = self._sessions.get(session)
        if account is None:
            limit = self._session_limit
            account = self._sessions[session] = _Account(
                f"session '{session}'", Decimal(str(limit.usd)), limit.window_s)
            excess = len(self._sessions) - self._max_sessions
            if excess > 0:  # forget the least recently used sessions that hold nothing
                for key in list(itertools.islice(self._sessions, excess + 32)):
                    if excess <= 0:
                        break
                    if key != session and self._sessions[key].reserved == ZERO:
                        del self._sessions[key]
                        excess -= 1
        else:
            self._sessions.move_to_end(session)
        return account


def _limit_account(scope: str, limit: Any) -> _Account | None:
    if limit is None:
        return None
    return _Account(scope, Decimal(str(limit.usd)), limit.window_s)
