"""Routing logic against scripted providers: order, retries, deadlines, breaker, failover, hedging."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

import anyio
import pytest

from mcp_gateway._errors import ClientInputRequired, ProviderError
from mcp_gateway.accounting import Price
from mcp_gateway.providers import Completion, Message, Usage
from mcp_gateway.routing import Breaker, RetryPolicy, Route, RouteError, Router
from tests.routing.fakes import Answer, Clock, Die, Fail, Hang, Raise, Scripted, router_for, target

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    """Trio with a virtual clock: time moves only when every task waits, and then jumps straight to
    the next deadline, so "a answers in 0.01 s, the hedge starts at 0.05 s" holds however busy the
    machine is (and the module runs in no wall-clock time)."""
    from trio.testing import MockClock

    return "trio", {"clock": MockClock(autojump_threshold=0)}


MESSAGES = (Message("user", "hello there"),)
PRICE = Price(Decimal(2), Decimal(8), Decimal("0.5"), Decimal("2.5"))


async def call(router: Router, *, stream: bool = False, pieces: list[str] | None = None, limit: float = 5, **kw):
    received = pieces if pieces is not None else []

    async def on_text(piece: str) -> None:
        received.append(piece)

    with anyio.fail_after(limit):
        return await router.complete("r", MESSAGES, params={}, on_text=on_text if stream else None, **kw)


# -- retry policy -------------------------------------------------------------------------------


def test_backoff_is_full_jitter_under_the_exponential_cap():
    policy = RetryPolicy(attempts=10, base_delay_s=0.1, max_delay_s=1.0)
    rng = random.Random(7)
    for tries, cap in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        waits = [policy.backoff(tries, rng) for _ in range(300)]
        assert all(0 <= w <= cap for w in waits)
        assert max(waits) > cap * 0.8 and min(waits) < cap * 0.2  # spread over the whole range


def test_retry_decisions():
    policy = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.01, max_retry_after_s=2)
    rng = random.Random(1)
    server = ProviderError("p", "x", kind="server", retryable=True)
    assert policy.next_delay(1, server, rng) is not None and policy.next_delay(3, server, rng) is None
    for kind in ("bad_request", "auth", "quota", "not_found", "content_filter"):
        assert policy.next_delay(1, ProviderError("p", "x", kind=kind, retryable=True), rng) is None
    assert policy.next_delay(1, ProviderError("p", "x", kind="other", retryable=False), rng) is None
    assert policy.next_delay(1, ProviderError("p", "x", kind="stream", retryable=True, output_started=True),
                             rng) is None
    assert policy.next_delay(1, ProviderError("p", "x", kind="rate_limit", retryable=True, retry_after=1.5),
                             rng) == 1.5
    assert policy.next_delay(1, ProviderError("p", "x", kind="rate_limit", retryable=True, retry_after=2.5),
                             rng) is None  # longer than max_retry_after_s: move on


# -- order ---------------------------------------------------------------------------------------


def test_weighted_order_follows_the_weights_and_zero_weight_is_fallback_only():
    a, b, c = Scripted("a"), Scripted("b"), Scripted("c")
    route = Route("r", (target(a, weight=3), target(b, weight=1), target(c, weight=0)), strategy="weighted")
    router = Router({"r": route}, {}, rng=random.Random(3))
    firsts = Counter(router.order(route)[0].provider.name for _ in range(4000))
    assert firsts["c"] == 0 and 0.70 < firsts["a"] / 4000 < 0.80
    assert all(router.order(route)[-1].provider.name == "c" for _ in range(50))


def test_least_latency_tries_unobserved_targets_first_then_the_fastest():
    a, b, c = Scripted("a"), Scripted("b"), Scripted("c")
    ta, tb, tc = target(a), target(b), target(c)
    route = Route("r", (ta, tb, tc), strategy="least_latency")
    router = Router({"r": route}, {})
    ta.latency.observe(0.5)
    assert [t.provider.name for t in router.order(route)] == ["b", "c", "a"]
    tb.latency.observe(0.9)
    tc.latency.observe(0.2)
    assert [t.provider.name for t in router.order(route)] == ["c", "a", "b"]
    for _ in range(10):
        ta.latency.observe(0.05)
    assert router.order(route)[0] is ta


async def test_least_latency_learns_from_calls():
    slow, fast = Scripted("slow", Answer(delay=0.06)), Scripted("fast", Answer(delay=0.0))
    router = router_for(target(slow), target(fast), strategy="least_latency")
    first = await call(router)
    second = await call(router)
    assert (first.target.provider.name, second.target.provider.name) == ("slow", "fast")  # both unobserved
    for _ in range(3):
        assert (await call(router)).target.provider.name == "fast"


# -- fallback and retries -----------------------------------------------------------------------


async def test_fallback_to_the_next_target_and_the_result_says_who_answered():
    a, b = Scripted("a", Fail("server")), Scripted("b")
    routed = await call(router_for(target(a), target(b)))
    assert routed.target.label == "b/m" and routed.completion.text == "fine answer"
    assert [(x.target, x.outcome) for x in routed.attempts] == [("a/m", "server"), ("b/m", "ok")]
    assert routed.describe()["attempts"] == 2 and routed.describe()["other_attempts"] == [
        {"target": "a/m", "outcome": "server", "error": "scripted server"}]


async def test_retryable_errors_are_retried_with_backoff_then_succeed():
    a = Scripted("a", Fail("server"), Fail("overloaded", status=529), Answer())
    routed = await call(router_for(target(a), retry=RetryPolicy(attempts=3, base_delay_s=0.001)))
    assert a.calls == 3 and routed.target.label == "a/m" and len(routed.attempts) == 3


async def test_retry_after_is_honoured():
    a = Scripted("a", Fail("rate_limit", status=429, retry_after=0.25), Answer())
    routed = await call(router_for(target(a), retry=RetryPolicy(attempts=2, base_delay_s=0.001)))
    assert routed.completion.text == "fine answer"
    assert a.call_times[1] - a.call_times[0] >= 0.25


async def test_a_longer_retry_after_moves_on_instead_of_sleeping():
    a, b = Scripted("a", Fail("rate_limit", status=429, retry_after=30)), Scripted("b")
    router = router_for(target(a), target(b), retry=RetryPolicy(attempts=3, max_retry_after_s=5))
    with anyio.fail_after(1):
        routed = await call(router)
    assert a.calls == 1 and routed.target.provider.name == "b"


@pytest.mark.parametrize("kind", ["bad_request", "auth", "quota", "not_found", "content_filter"])
async def test_non_retryable_kinds_are_never_retried_but_fail_over(kind):
    a, b = Scripted("a", Fail(kind, retryable=True, status=400)), Scripted("b")
    routed = await call(router_for(target(a), target(b), retry=RetryPolicy(attempts=5, base_delay_s=0.001)))
    assert a.calls == 1 and b.calls == 1 and routed.target.provider.name == "b"


async def test_when_every_target_fails_the_last_error_comes_back_with_the_attempts():
    a, b = Scripted("a", Fail("rate_limit", status=429, retry_after=0.02)), Scripted("b", Fail("server"))
    with pytest.raises(RouteError) as caught:
        await call(router_for(target(a), target(b), retry=RetryPolicy(attempts=2, base_delay_s=0.001)))
    error = caught.value
    assert isinstance(error, ProviderError) and error.provider == "b" and error.kind == "server"
    assert [a.outcome for a in error.attempts] == ["rate_limit", "rate_limit", "server", "server"]
    assert "route 'r': 4 attempts: a/m rate_limit, a/m rate_limit, b/m server, b/m server" in str(error)


async def test_a_single_failure_keeps_the_providers_own_message():
    with pytest.raises(ProviderError) as caught:
        await call(router_for(target(Scripted("a", Fail("auth", retryable=False, status=401)))))
    assert str(caught.value) == "provider 'a' failed: scripted auth" and caught.value.kind == "auth"


async def test_foreign_exceptions_become_provider_errors_and_gateway_errors_pass_through():
    broken = Scripted("a", Raise(RuntimeError("boom")))
    with pytest.raises(ProviderError, match=r"provider 'a' failed: RuntimeError: boom"):
        await call(router_for(target(broken)))
    needs_client = Scripted("a", Raise(ClientInputRequired({"x": object()})))
    other = Scripted("b")
    with pytest.raises(ClientInputRequired):
        await call(router_for(target(needs_client), target(other)))
    assert other.calls == 0  # not a provider failure: no failover


# -- streams and deadlines ----------------------------------------------------------------------


async def test_a_stream_that_dies_before_any_output_fails_over():
    pieces: list[str] = []
    a, b = Scripted("a", Die(())), Scripted("b", Answer(pieces=("fine ", "answer")))
    routed = await call(router_for(target(a), target(b)), stream=True, pieces=pieces)
    assert routed.target.provider.name == "b" and pieces == ["fine ", "answer"]


async def test_a_stream_that_dies_after_output_is_an_error_not_a_failover():
    pieces: list[str] = []
    a, b = Scripted("a", Die(("partial ",))), Scripted("b")
    with pytest.raises(ProviderError) as caught:
        await call(router_for(target(a), target(b), retry=RetryPolicy(attempts=3)), stream=True, pieces=pieces)
    assert caught.value.output_started and caught.value.kind == "stream"
    assert pieces == ["partial "] and a.calls == 1 and b.calls == 0


async def test_output_started_is_tracked_by_the_router_even_if_the_provider_does_not_say_so():
    class Liar(Scripted):
        async def complete(self, request, *, on_text=None):
            self.calls += 1
            await on_text("some text ")
            raise ProviderError(self.name, "died", kind="stream", retryable=True)  # output_started not set

    pieces: list[str] = []
    b = Scripted("b")
    with pytest.raises(ProviderError) as caught:
        await call(router_for(target(Liar("a")), target(b)), stream=True, pieces=pieces)
    assert caught.value.output_started and b.calls == 0


async def test_first_token_timeout_fails_over_to_the_next_target():
    a, b = Scripted("a", Hang()), Scripted("b", Answer(pieces=("quick",)))
    router = router_for(target(a), target(b), first_token_s=0.1)
    routed = await call(router, stream=True, limit=2)
    assert routed.target.provider.name == "b" and a.cancelled == 1
    assert routed.attempts[0].outcome == "timeout"


async def test_first_token_timeout_does_not_cut_a_slow_but_started_stream():
    a = Scripted("a", Answer(pieces=("a ", "b ", "c"), piece_delay=0.08))
    routed = await call(router_for(target(a), first_token_s=0.05, total_s=2), stream=True)
    assert routed.completion.text == "fine answer"


async def test_total_timeout_applies_to_whole_calls_too():
    a, b = Scripted("a", Answer(delay=5)), Scripted("b")
    routed = await call(router_for(target(a), target(b), total_s=0.1), limit=2)
    assert routed.target.provider.name == "b"
    assert routed.attempts[0].outcome == "timeout" and "total_s=0.1" in routed.attempts[0].error


async def test_total_timeout_after_output_started_is_an_error():
    a = Scripted("a", Answer(pieces=("x ", "y"), piece_delay=5))
    with pytest.raises(ProviderError) as caught:
        await call(router_for(target(a), target(Scripted("b")), total_s=0.15), stream=True, limit=2)
    assert caught.value.kind == "timeout" and caught.value.output_started


async def test_the_callers_own_on_text_failure_ends_the_call_unchanged():
    a, b = Scripted("a", Answer(pieces=("x",))), Scripted("b")

    async def on_text(piece: str) -> None:
        raise anyio.BrokenResourceError("client gone")

    with pytest.raises(anyio.BrokenResourceError):
        await router_for(target(a), target(b)).complete("r", MESSAGES, params={}, on_text=on_text)
    assert b.calls == 0


# -- circuit breaker ----------------------------------------------------------------------------


def test_breaker_state_machine():
    clock = Clock()
    breaker = Breaker(2, 10, clock=clock)
    assert breaker.admit() == "closed"
    breaker.failure("closed")
    breaker.success("closed")  # a success resets the count
    breaker.failure("closed")
    assert breaker.state == "closed"
    breaker.failure("closed")
    assert breaker.state == "open" and breaker.admit() is None and breaker.retry_in() == 10
    clock.advance(10)
    assert breaker.admit() == "probe" and breaker.admit() is None  # one probe at a time
    breaker.failure("probe")
    assert breaker.state == "open" and breaker.admit() is None
    clock.advance(10)
    assert breaker.admit() == "probe"
    breaker.release("probe")  # a cancelled probe lets another go
    assert breaker.admit() == "probe"
    breaker.success("probe")
    assert breaker.state == "closed" and breaker.admit() == "closed"


async def test_breaker_opens_skips_the_target_and_recovers_after_a_half_open_probe():
    clock = Clock()
    a = Scripted("a", Fail("server"), Fail("server"), Answer(text="a is back"))
    b = Scripted("b", Answer(text="from b"))
    router = router_for(target(a, breaker=Breaker(2, 30, clock=clock)), target(b))
    for _ in range(2):
        assert (await call(router)).completion.text == "from b"
    assert a.calls == 2
    routed = await call(router)  # open: a is skipped
    assert a.calls == 2 and routed.skipped == ("a/m",) and routed.describe()["skipped"] == ["a/m"]
    clock.advance(30)
    routed = await call(router)  # half-open probe succeeds
    assert a.calls == 3 and routed.completion.text == "a is back"
    assert router.route("r").targets[0].breaker.state == "closed"


async def test_a_call_its_caller_abandons_cancels_the_provider_and_is_accounted():
    """A one-target route with no deadline and no streaming calls its provider straight, and still
    cancels it with the caller, records the attempt and lets the next probe through."""
    clock = Clock()
    a = Scripted("a", Fail("server"), Hang(), Answer("back"))
    router = router_for(target(a, breaker=Breaker(1, 30, clock=clock)))
    with pytest.raises(ProviderError):
        await call(router)  # opens the circuit
    clock.advance(30)
    with anyio.move_on_after(1) as scope:
        await call(router)  # the half-open probe hangs until the caller gives up
    assert scope.cancelled_caught and a.cancelled == 1
    totals = router.ledger.process
    # the 503 was refused before model work (free); the cancelled probe's cost is unknown
    assert (totals.calls, totals.failed, totals.provider_calls, totals.unknown_cost) == (0, 2, 2, 1)
    routed = await call(router)  # the cancelled probe was released: another goes at once
    assert routed.completion.text == "back" and router.route("r").targets[0].breaker.state == "closed"


async def test_every_circuit_open_fails_fast():
    clock = Clock()
    a = Scripted("a", Fail("server"))
    router = router_for(target(a, breaker=Breaker(1, 30, clock=clock)))
    with pytest.raises(ProviderError):
        await call(router)
    with pytest.raises(ProviderError) as caught:
        await call(router)
    assert caught.value.kind == "circuit_open" and caught.value.retry_after == 30 and a.calls == 1


async def test_request_faults_do_not_open_the_breaker():
    clock = Clock()
    a = Scripted("a", Fail("bad_request", retryable=False, status=400))
    router = router_for(target(a, breaker=Breaker(1, 30, clock=clock)))
    for _ in range(3):
        with pytest.raises(ProviderError):
            await call(router)
    assert a.calls == 3


# -- hedging --------------------------------------------------------------------------------------


async def test_hedging_starts_the_next_target_when_the_first_is_slow_and_cancels_the_loser():
    a, b = Scripted("a", Answer(text="slow", delay=3)), Scripted("b", Answer(text="fast", delay=0.02))
    a_target = target(a, price=PRICE)
    routed = await call(router_for(a_target, target(b, price=PRICE), hedge_after_s=0.05), limit=2)
    assert routed.completion.text == "fast" and routed.hedged and a.cancelled == 1
    outcomes = {x.target: x.outcome for x in routed.attempts}
    assert outcomes == {"a/m": "cancelled", "b/m": "ok"}
    assert routed.unknown_cost == 1  # the loser's usage is unknown: not in cost_usd, and said so
    assert routed.describe()["hedged"] is True and routed.describe()["cost_unknown_attempts"] == 1


async def test_no_hedge_when_the_first_target_answers_in_time():
    a, b = Scripted("a", Answer(delay=0.01)), Scripted("b")
    routed = await call(router_for(target(a), target(b), hedge_after_s=0.2))
    assert not routed.hedged and b.calls == 0


async def test_hedged_loser_that_also_finishes_is_accounted():
    class Stubborn(Scripted):
        """Finishes its answer even when cancelled (as a provider that bills for it would)."""

        async def complete(self, request, *, on_text=None):
            self.calls += 1
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.1)
            return Completion("stubborn", "stop", Usage(1000, 100), request.model)

    a, b = Stubborn("a"), Scripted("b", Answer(text="fast", delay=0.01, usage=Usage(100, 20)))
    routed = await call(router_for(target(a, price=PRICE), target(b, price=PRICE), hedge_after_s=0.05))
    assert routed.completion.text == "fast"
    assert {x.target: x.outcome for x in routed.attempts} == {"a/m": "lost", "b/m": "ok"}
    # 100 x 2 + 20 x 8 = 360 (b) and 1000 x 2 + 100 x 8 = 2800 (a), per million tokens
    assert routed.cost_usd == Decimal("0.00316") and routed.unknown_cost == 0


async def test_streamed_hedge_commits_to_the_first_target_that_sends_text():
    pieces: list[str] = []
    a = Scripted("a", Answer(text="slow", delay=0.3, pieces=("slow",)))
    b = Scripted("b", Answer(text="fast stream", pieces=("fast ", "stream"), delay=0.01, piece_delay=0.05))
    routed = await call(router_for(target(a), target(b), hedge_after_s=0.05), stream=True, pieces=pieces)
    assert routed.completion.text == "fast stream" and pieces == ["fast ", "stream"] and a.cancelled == 1


async def test_hedging_fails_over_when_the_running_target_fails():
    a, b, c = Scripted("a", Fail("server", delay=0.01)), Scripted("b", Fail("server")), Scripted("c")
    routed = await call(router_for(target(a), target(b), target(c), hedge_after_s=1.0), limit=2)
    assert routed.target.provider.name == "c" and not routed.hedged


async def test_hedging_cancels_everything_when_the_caller_goes_away():
    a, b = Scripted("a", Hang()), Scripted("b", Hang())
    router = router_for(target(a), target(b), hedge_after_s=0.02)
    with anyio.move_on_after(0.2):
        await router.complete("r", MESSAGES, params={})
    assert (a.cancelled, b.cancelled) == (1, 1)
    assert router.ledger.process.failed == 1 and router.ledger.process.provider_calls == 2


# -- config reload --------------------------------------------------------------------------------


async def test_a_new_router_adopts_the_state_of_the_one_it_replaces():
    from mcp_gateway.accounting import Budgets
    from mcp_gateway.cache import MemoryCache
    from mcp_gateway.config._models import BudgetsConfig

    def build(provider: Scripted) -> Router:
        clock = Clock()
        router = router_for(target(provider, price=PRICE, breaker=Breaker(1, 60, clock=clock)),
                            target(Scripted("b"), price=PRICE))
        router.budgets = Budgets(BudgetsConfig.model_validate({"per_tool": {"t": {"usd": 1}}}))
        router.cache = MemoryCache(10)
        return router

    old = build(Scripted("a", Fail("server")))
    await old.remember(await call(old, tool="t", cache_ttl_s=60))
    assert old.route("r").targets[0].breaker.state == "open"
    new = build(Scripted("a"))
    new.adopt(old)
    assert new.ledger is old.ledger and new.cache is old.cache
    assert new.budgets.remaining("t") == old.budgets.remaining("t") < 1
    assert new.route("r").targets[0].breaker.state == "open"  # still skipped after the reload
    assert new.route("r").targets[1].latency is old.route("r").targets[1].latency
    await old.aclose()  # the old router no longer owns the shared cache
    assert len(new.cache) == 1 and new.ledger.process.calls == 1
    assert (await call(new, tool="t", cache_ttl_s=60)).cache == "hit"
