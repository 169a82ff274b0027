"""One routed call: targets tried in order, each with retries, deadlines, breaker and budget.

Without hedging the targets run one after another, in the caller's task. With `hedge_after_s`
each target runs in its own task ("runner"): the next target starts when nothing has come of the
running ones (no answer, no first piece of a streamed answer) for that long, or at once when
every running target has failed. The first answer wins and the others are cancelled. A streamed
answer commits to the target that sends the first piece of text: from then on only that target
can answer (its text is already with the caller), and the others are cancelled at once.

A target's failure before any text reached the caller moves on (after the target's retries);
after text reached the caller, the error is returned as is (no failover, no retry).

Durations (attempt times, target latencies) are read from the event loop's clock, the one its
deadlines use, so a test's virtual clock governs both.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal

import anyio
import anyio.lowlevel

from .._errors import GatewayError, ProviderError
from ..accounting import BudgetExceededError, BudgetHold, cost_of
from ..providers import Completion, CompletionRequest, OnText, Usage
from ._policy import is_free, is_neutral
from ._route import Attempt, Route, Target

__all__ = ["Guard", "RoutedCall"]

log = logging.getLogger("mcp_gateway.routing")

Guard = Callable[[Target], Awaitable["BudgetHold | None"]]
"""Reserves a try's worst-case cost on the budgets that apply (None: no budget applies)."""
ZERO = Decimal(0)


class _Runner:
    __slots__ = ("attempt_scope", "first_piece", "forwarded", "hedge", "in_callback", "scope", "target",
                 "ticket", "total_deadline")

    def __init__(self, target: Target, ticket: str, hedge: bool, *, hedge_scope: bool = False) -> None:
        self.target = target
        self.ticket = ticket
        self.hedge = hedge
        # Only a hedged runner can be cancelled by another (it runs in its own task, in this scope).
        self.scope: anyio.CancelScope | None = anyio.CancelScope() if hedge_scope else None
        self.attempt_scope: anyio.CancelScope | None = None
        self.total_deadline = math.inf
        self.first_piece = False
        self.forwarded = False  # some text of this target reached the caller
        self.in_callback = False


class RoutedCall:
    """The state of one call while it runs; read `result`, `fatal`, `failures` and `attempts` after."""

    def __init__(self, route: Route, order: Sequence[Target], requests: dict[Target, CompletionRequest],
                 on_text: OnText | None, guard: Guard | None, rng: random.Random) -> None:
        self.route = route
        self.order = order
        self.requests = requests
        self.on_text = on_text
        self.guard = guard
        self.rng = rng
        self.attempts: list[Attempt] = []
        self.failures: list[Exception] = []  # ProviderError | BudgetExceededError, oldest first
        self.skipped: list[str] = []
        self.active: set[_Runner] = set()
        self.result: tuple[Target, Completion] | None = None
        self.fatal: BaseException | None = None
        self.committed: _Runner | None = None
        self.hedged = False
        self._event: anyio.Event | None = None

    # -- driving -------------------------------------------------------------------------------

    async def run(self) -> None:
        if self.route.hedge_after_s is None:
            for target in self.order:
                ticket = self._admit(target)
                if ticket is None:
                    continue
                runner = _Runner(target, ticket, hedge=False)
                self.active.add(runner)
                try:
                    await self._try_target(runner)  # nobody cancels a lone runner: no scope of its own
                finally:
                    self.active.discard(runner)
                if self.result is not None or self.fatal is not None:
                    return
        else:
            await self._run_hedged(self.route.hedge_after_s)

    async def _run_hedged(self, hedge_after: float) -> None:
        pending = iter(self.order)
        async with anyio.create_task_group() as group:

            def launch(hedge: bool) -> bool:
                for target in pending:
                    ticket = self._admit(target)
                    if ticket is not None:
                        runner = _Runner(target, ticket, hedge, hedge_scope=True)
                        self.active.add(runner)
                        group.start_soon(self._run_runner, runner)
                        return True
                return False

            exhausted = not launch(False)
            last_launch = anyio.current_time()
            while self.result is None and self.fatal is None:
                if not self.active:
                    if exhausted or not launch(False):
                        break
                    last_launch = anyio.current_time()
                    continue
                self._event = event = anyio.Event()
                wait: float | None = None
                if not exhausted and self.committed is None:
                    wait = last_launch + hedge_after - anyio.current_time()
                    if wait <= 0:
                        if launch(True):
                            self.hedged = True
                            last_launch = anyio.current_time()
                            continue
                        exhausted, wait = True, None
                with anyio.move_on_after(wait):
                    await event.wait()
            group.cancel_scope.cancel()

    async def _run_runner(self, runner: _Runner) -> None:
        assert runner.scope is not None
        try:
            with runner.scope:
                await self._try_target(runner)
        finally:
            self.active.discard(runner)
            self._wake()

    def _wake(self) -> None:
        if self._event is not None:
            self._event.set()

    def _admit(self, target: Target) -> str | None:
        if target.breaker is None:
            return "closed"
        ticket = target.breaker.admit()
        if ticket is None and target.label not in self.skipped:
            self.skipped.append(target.label)
        return ticket

    # -- one target ----------------------------------------------------------------------------

    async def _try_target(self, runner: _Runner) -> None:
        target = runner.target
        route = self.route
        policy = route.retry
        tries = 0
        while True:
            tries += 1
            if tries > 1:
                ticket = target.breaker.admit() if target.breaker is not None else "closed"
                if ticket is None:  # the circuit opened meanwhile: move on
                    return
                runner.ticket = ticket
            reservation: BudgetHold | None = None
            if self.guard is not None:
                try:
                    reservation = await self.guard(target)
                except BudgetExceededError as exc:
                    if target.breaker is not None:
                        target.breaker.release(runner.ticket)
                    self.failures.append(exc)
                    return
            started = anyio.current_time()
            try:
                completion = await self._attempt(runner)
            except anyio.get_cancelled_exc_class():
                await self._interrupted(runner, reservation, started)
                raise
            except ProviderError as exc:
                error = exc
            except GatewayError as exc:  # not a provider failure (e.g. the client must answer first)
                await self._interrupted(runner, reservation, started)
                self.fatal = exc
                return
            except Exception as exc:
                if runner.in_callback:  # the caller's own on_text failed: end the call with that
                    await self._interrupted(runner, reservation, started)
                    self.fatal = exc
                    return
                error = ProviderError(target.provider.name, f"{type(exc).__name__}: {exc}")
                error.__cause__ = exc
            else:
                cost = cost_of(completion.usage, target.price)
                if reservation is not None:
                    await _settle(reservation, cost)
                self._succeeded(runner, started, completion, cost)
                return
            if runner.forwarded:
                error.output_started = True
            await self._failed(runner, reservation, started, error)
            self.failures.append(error)
            if error.output_started:
                self.fatal = error
                return
            delay = policy.next_delay(tries, error, self.rng)
            if delay is None:
                return
            await anyio.sleep(delay)

    async def _attempt(self, runner: _Runner) -> Completion:
        target = runner.target
        route = self.route
        forward = self._forwarder(runner) if self.on_text is not None else None
        # A whole (non-streamed) answer's first byte is the answer: first_token_s bounds it too.
        first = route.first_token_s
        runner.first_piece = False
        if first is None and route.total_s is None:  # no deadline of ours: no scope either
            runner.attempt_scope = None
            return await target.provider.complete(self.requests[target], on_text=forward)
        start = anyio.current_time()
        runner.total_deadline = start + route.total_s if route.total_s is not None else math.inf
        deadline = min(start + first if first is not None else math.inf, runner.total_deadline)
        with anyio.CancelScope(deadline=deadline) as scope:
            runner.attempt_scope = scope
            return await target.provider.complete(self.requests[target], on_text=forward)
        # Only reached when this attempt's own deadline fired (an outer cancel propagates).
        name = target.provider.name
        if runner.first_piece or first is None or runner.total_deadline <= deadline:
            assert route.total_s is not None
            raise ProviderError(name, f"no complete answer within total_s={route.total_s:g} (route timeout)",
                                kind="timeout", retryable=True, output_started=runner.forwarded)
        what = "no answer text" if forward is not None else "no answer"
        raise ProviderError(name, f"{what} within first_token_s={first:g} (route timeout)",
                            kind="timeout", retryable=True)

    def _forwarder(self, runner: _Runner) -> OnText:
        on_text = self.on_text
        assert on_text is not None

        async def forward(piece: str) -> None:
            if self.committed is not runner:
                if not piece:
                    return  # progress without text commits nothing
                if self.committed is not None:  # another target's answer is already streaming
                    await anyio.lowlevel.checkpoint()  # this runner was cancelled: raises here
                    return
                self.committed = runner
                for other in self.active:
                    if other is not runner and other.scope is not None:  # None: a lone runner
                        other.scope.cancel()
                self._wake()
            if piece and not runner.first_piece:
                runner.first_piece = True
                if runner.attempt_scope is not None:
                    runner.attempt_scope.deadline = runner.total_deadline
            runner.forwarded = True
            runner.in_callback = True
            await on_text(piece)
            runner.in_callback = False

        return forward

    # -- bookkeeping ---------------------------------------------------------------------------

    def _record(self, runner: _Runner, started: float, outcome: str, usage: Usage | None,
                cost: Decimal | None, error: str | None = None, *, now: float | None = None) -> Attempt:
        target = runner.target
        ended = anyio.current_time() if now is None else now
        attempt = Attempt(target.label, target.provider.name, target.model, outcome,  # positional: per attempt
                          round((ended - started) * 1000, 3), usage, cost, runner.hedge, error)
        self.attempts.append(attempt)
        return attempt

    def _succeeded(self, runner: _Runner, started: float, completion: Completion, cost: Decimal | None) -> None:
        """An answer (its cost settled on the budgets): close the breaker, learn the latency, record it."""
        target = runner.target
        if target.breaker is not None:
            target.breaker.success(runner.ticket)
        now = anyio.current_time()
        target.latency.observe(now - started)
        won = self.result is None and self.fatal is None
        self._record(runner, started, "ok" if won else "lost", completion.usage, cost, now=now)
        if won:
            self.result = (target, completion)
            self._wake()

    async def _failed(self, runner: _Runner, reservation: BudgetHold | None, started: float,
                      error: ProviderError) -> None:
        target = runner.target
        free = is_free(error)
        breaker = target.breaker
        if is_neutral(error):
            if breaker is not None and runner.ticket == "probe":
                breaker.success(runner.ticket)  # the target answered: it is up
        else:
            if breaker is not None:
                breaker.failure(runner.ticket)
            target.latency.penalise(anyio.current_time() - started)
        if error.usage is not None:  # the provider answered (e.g. with no content) and said what it billed
            usage, cost = error.usage, cost_of(error.usage, target.price)
        elif free:
            usage, cost = Usage(), ZERO
        else:
            usage, cost = None, _unknown_cost(target)
        if reservation is not None:
            await _settle(reservation, cost)  # None: unknown, the whole hold stays charged
        self._record(runner, started, error.kind, usage, cost, error.cause)
        log.info("route=%s target=%s failed: kind=%s retryable=%s output_started=%s",
                 self.route.name, target.label, error.kind, error.retryable, error.output_started or runner.forwarded)

    async def _interrupted(self, runner: _Runner, reservation: BudgetHold | None, started: float) -> None:
        """Cancelled (a hedge that lost, the caller gone) or stopped by a non-provider error."""
        target = runner.target
        if reservation is not None:
            await _settle(reservation, None)  # usage unknown: keep the worst case charged
        if target.breaker is not None:
            target.breaker.release(runner.ticket)
        self._record(runner, started, "cancelled", None, _unknown_cost(target))


async def _settle(reservation: BudgetHold, actual: Decimal | None) -> None:
    """Settle even while being cancelled (a shared budget settles in Redis, with its own bound)."""
    with anyio.CancelScope(shield=True):
        await reservation.close(actual)


def _unknown_cost(target: Target) -> Decimal | None:
    """The cost of unknown usage: 0 on a free model, else unknown."""
    price = target.price
    if price is not None and not (price.input or price.output or price.cache_read or price.cache_write):
        return ZERO
    return None
