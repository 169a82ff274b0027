"""Rate limits: exact admission under concurrency, retry-after, token settlement, concurrency caps.

Every behaviour runs against both backends: in memory and a real redis-server.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest
import redis.asyncio as aioredis

from mcp_gateway.security.ratelimit import (
    MemoryRateLimitBackend,
    RateLimiter,
    RateLimitExceeded,
    RateLimits,
    RateLimitUnavailable,
    RedisRateLimitBackend,
    retry_after_header,
)
from tests.redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


Factory = Callable[[Clock | None], RateLimiter]


@pytest.fixture(params=["memory", "redis"])
async def make_limiter(request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    """Builds limiters on one shared store (every limiter of a test sees the same buckets)."""
    limiters: list[RateLimiter] = []
    shared_memory: dict[int, MemoryRateLimitBackend] = {}
    prefix = f"t{secrets.token_hex(4)}:"

    def factory(clock: Clock | None = None) -> RateLimiter:
        if request.param == "memory":
            key = id(clock)
            if key not in shared_memory:
                backend = MemoryRateLimitBackend(clock=clock) if clock else MemoryRateLimitBackend()
                shared_memory[key] = backend
            return RateLimiter(shared_memory[key])
        server: RedisServer = request.getfixturevalue("redis_server")
        limiter = RateLimiter(RedisRateLimitBackend.from_url(server.url, prefix=prefix, clock=clock))
        limiters.append(limiter)
        return limiter

    yield factory
    for limiter in limiters:
        await limiter.aclose()


async def admitted_out_of(limiter_for: Callable[[int], RateLimiter], attempts: int, limits: RateLimits,
                          tool: str | None = None, tool_limits: RateLimits | None = None) -> int:
    admitted = 0

    async def one(i: int) -> None:
        nonlocal admitted
        try:
            async with limiter_for(i).limit("key:a", limits, tool=tool, tool_limits=tool_limits):
                admitted += 1
        except RateLimitExceeded:
            pass

    async with anyio.create_task_group() as tg:
        for i in range(attempts):
            tg.start_soon(one, i)
    return admitted


async def test_100_concurrent_against_10_admit_exactly_10(make_limiter: Factory) -> None:
    clock = Clock()
    limiters = [make_limiter(clock), make_limiter(clock)]  # two "processes" on one store
    assert await admitted_out_of(lambda i: limiters[i % 2], 100, RateLimits(requests_per_minute=10)) == 10


async def test_per_tool_limit_is_shared_by_keys(make_limiter: Factory) -> None:
    limiter = make_limiter(Clock())
    got = 0
    for principal in ("key:a", "key:b", "key:c"):
        for _ in range(3):
            try:
                async with limiter.limit(principal, None, tool="summarize",
                                         tool_limits=RateLimits(requests_per_minute=5)):
                    got += 1
            except RateLimitExceeded as exc:
                assert exc.scope == "tool" and exc.subject == "summarize"
    assert got == 5


async def test_retry_after_follows_the_clock(make_limiter: Factory) -> None:
    clock = Clock()
    limiter = make_limiter(clock)
    limits = RateLimits(requests_per_minute=10)  # one more every 6 s
    for _ in range(10):
        async with limiter.limit("key:a", limits):
            pass
    with pytest.raises(RateLimitExceeded) as info:
        async with limiter.limit("key:a", limits):
            pass
    assert info.value.retry_after == pytest.approx(6.0, abs=1e-3)
    assert info.value.limit == "requests_per_minute" and info.value.scope == "key"
    assert "allows 10 requests per minute; retry in 6.0 s" in str(info.value)
    assert retry_after_header(info.value) == "6"
    clock.now += 4
    with pytest.raises(RateLimitExceeded) as info:
        async with limiter.limit("key:a", limits):
            pass
    assert info.value.retry_after == pytest.approx(2.0, abs=1e-3)
    clock.now += 2
    async with limiter.limit("key:a", limits):  # exactly when promised
        pass
    clock.now += 60
    assert await admitted_out_of(lambda i: limiter, 20, limits) == 10  # a full burst again


async def test_rejection_charges_nothing(make_limiter: Factory) -> None:
    clock = Clock()
    limiter = make_limiter(clock)
    key_limits = RateLimits(requests_per_minute=100)
    tool_limits = RateLimits(requests_per_minute=1)
    async with limiter.limit("key:a", key_limits, tool="t", tool_limits=tool_limits):
        pass
    for _ in range(50):  # all refused by the tool bucket: the key bucket must not be charged
        with pytest.raises(RateLimitExceeded):
            async with limiter.limit("key:a", key_limits, tool="t", tool_limits=tool_limits):
                pass
    assert await admitted_out_of(lambda i: limiter, 200, key_limits) == 99


async def test_tokens_reserve_then_settle(make_limiter: Factory) -> None:
    clock = Clock()
    limiter = make_limiter(clock)
    limits = RateLimits(tokens_per_minute=1000)
    async with limiter.limit("key:a", limits, tokens=800) as permit:
        await permit.settle(100)  # refund 700
    async with limiter.limit("key:a", limits, tokens=800) as permit:  # fits only thanks to the refund
        await permit.settle(900)  # charge 100 more: 1000 used
    with pytest.raises(RateLimitExceeded) as info:
        async with limiter.limit("key:a", limits, tokens=60):
            pass
    assert info.value.limit == "tokens_per_minute"
    assert info.value.retry_after == pytest.approx(3.6, abs=1e-3)  # 60 tokens at 1000/min
    with pytest.raises(RuntimeError):
        await permit.settle(1)


async def test_underestimate_leaves_debt(make_limiter: Factory) -> None:
    clock = Clock()
    limiter = make_limiter(clock)
    limits = RateLimits(tokens_per_minute=600)
    async with limiter.limit("key:a", limits, tokens=100) as permit:
        await permit.settle(900)  # 300 over the minute's budget
    with pytest.raises(RateLimitExceeded) as info:
        async with limiter.limit("key:a", limits, tokens=0):
            pass
    assert info.value.retry_after == pytest.approx(30.0, abs=1e-3)  # pay back 300 at 10/s


async def test_estimate_above_the_budget_is_clamped(make_limiter: Factory) -> None:
    clock = Clock()
    limiter = make_limiter(clock)
    limits = RateLimits(tokens_per_minute=500)
    async with limiter.limit("key:a", limits, tokens=5000) as permit:  # admitted on a full bucket
        await permit.settle(400)
    with pytest.raises(RateLimitExceeded):
        async with limiter.limit("key:a", limits, tokens=200):
            pass


async def test_concurrency_cap_released_on_exit_error_and_cancel(make_limiter: Factory) -> None:
    limiter = make_limiter(Clock())
    limits = RateLimits(max_concurrency=2)
    inside = anyio.Event()
    release = anyio.Event()

    async def hold() -> None:
        async with limiter.limit("key:a", limits):
            inside.set()
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await inside.wait()
        inside = anyio.Event()
        tg.start_soon(hold)
        await inside.wait()
        with pytest.raises(RateLimitExceeded) as info:
            async with limiter.limit("key:a", limits):
                pass
        assert info.value.limit == "max_concurrency" and info.value.retry_after == 1.0
        tg.cancel_scope.cancel()  # both holders are cancelled inside their blocks

    with pytest.raises(ValueError):
        async with limiter.limit("key:a", limits):
            raise ValueError("boom")
    # every slot came back: two at once fit again
    async with limiter.limit("key:a", limits), limiter.limit("key:a", limits):
        pass


async def test_invalid_limits() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        RateLimits(requests_per_minute=0)
    with pytest.raises(ValueError):
        RateLimits(max_concurrency=True)


async def test_no_limits_means_no_backend_call() -> None:
    class Exploding(MemoryRateLimitBackend):
        async def acquire(self, *args: object, **kwargs: object):  # type: ignore[override]
            raise AssertionError("not called")

    async with RateLimiter(Exploding()).limit("key:a", None, tool="x", tool_limits=RateLimits()):
        pass


# -- Redis specifics --------------------------------------------------------------------------------


async def test_redis_leases_expire_when_a_process_dies(redis_server: RedisServer) -> None:
    clock = Clock()
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        backend = RedisRateLimitBackend(client, prefix=f"t{secrets.token_hex(4)}:", clock=clock)
        limiter = RateLimiter(backend, lease_ttl=30)
        limits = RateLimits(max_concurrency=1)
        await limiter.limit("key:a", limits).__aenter__()  # entered, never exited: a crash
        with pytest.raises(RateLimitExceeded):
            async with limiter.limit("key:a", limits):
                pass
        clock.now += 31
        async with limiter.limit("key:a", limits):
            pass
    finally:
        await client.aclose()


async def test_redis_unreachable_fails_closed_or_open() -> None:
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        backend = RedisRateLimitBackend(client)
        with pytest.raises(RateLimitUnavailable, match="rate-limit store is unavailable"):
            async with RateLimiter(backend).limit("key:a", RateLimits(requests_per_minute=1)):
                pass
        async with RateLimiter(backend, fail_open=True).limit("key:a", RateLimits(max_concurrency=1)):
            pass  # admitted; the release failure is swallowed too
    finally:
        await client.aclose()


def test_redis_two_os_processes_share_one_limit(redis_server: RedisServer) -> None:
    prefix = f"t{secrets.token_hex(4)}:"
    script = textwrap.dedent(f"""
        import anyio, redis.asyncio as aioredis
        from mcp_gateway.security.ratelimit import *
        async def main():
            limiter = RateLimiter(RedisRateLimitBackend.from_url({redis_server.url!r}, prefix={prefix!r}))
            admitted = 0
            async def one():
                nonlocal admitted
                try:
                    async with limiter.limit("key:shared", RateLimits(requests_per_minute=10)):
                        admitted += 1
                except RateLimitExceeded:
                    pass
            async with anyio.create_task_group() as tg:
                for _ in range(50):
                    tg.start_soon(one)
            await limiter.aclose()
            print(admitted)
        anyio.run(main)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    counts = [int(p.communicate(timeout=60)[0].strip()) for p in procs]
    assert sum(counts) == 10, counts


async def test_redis_outage_does_not_lock_a_key_out_after_recovery(tmp_path: Path) -> None:
    """A call that ends while Redis is down cannot hand its slot back; once Redis answers again the
    release is retried, so the key is usable at once, not after the lease runs out."""
    server = RedisServer(tmp_path / "redis", persistent=True)  # the held lease survives the restart
    server.start()
    try:
        limiter = RateLimiter(RedisRateLimitBackend.from_url(server.url, socket_timeout=0.5, pool_timeout=0.5),
                              lease_ttl=600)
        limits = RateLimits(max_concurrency=1)
        async with limiter.limit("key:a", limits):
            server.stop(kill=True)
        assert limiter.pending_releases == 1
        server.start()
        async with limiter.limit("key:a", limits):  # refused for 600 s without the retried release
            pass
        assert limiter.pending_releases == 0
        await limiter.aclose()
    finally:
        server.stop()


async def test_redis_outage_release_is_retried_by_the_renewer_without_new_calls(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis", persistent=True)
    server.start()
    try:
        prefix = f"t{secrets.token_hex(4)}:"
        limiter = RateLimiter(RedisRateLimitBackend.from_url(server.url, prefix=prefix, socket_timeout=0.5,
                                                             pool_timeout=0.5), lease_ttl=600)
        other = RateLimiter(RedisRateLimitBackend.from_url(server.url, prefix=prefix))  # another process
        limits = RateLimits(max_concurrency=1)
        async with limiter.limit("key:a", limits):
            server.stop(kill=True)
        server.start()
        await limiter.renew_now()
        assert limiter.pending_releases == 0
        async with other.limit("key:a", limits):
            pass
        await limiter.aclose()
        await other.aclose()
    finally:
        server.stop()


async def test_redis_leases_are_short_and_renewed_while_the_call_runs(redis_server: RedisServer) -> None:
    clock = Clock()
    prefix = f"t{secrets.token_hex(4)}:"
    mine = RateLimiter(RedisRateLimitBackend.from_url(redis_server.url, prefix=prefix, clock=clock), lease_ttl=30)
    other = RateLimiter(RedisRateLimitBackend.from_url(redis_server.url, prefix=prefix, clock=clock), lease_ttl=30)
    limits = RateLimits(max_concurrency=1)
    try:
        async with mine.limit("key:a", limits):
            for _ in range(4):  # 100 s of call, far past the 30 s lease, renewed every 25 s
                clock.now += 25
                await mine.renew_now()
                with pytest.raises(RateLimitExceeded):
                    async with other.limit("key:a", limits):
                        pass
        async with other.limit("key:a", limits):  # released on exit
            pass
    finally:
        await mine.aclose()
        await other.aclose()


async def test_the_renewer_runs_while_the_limiter_is_entered() -> None:
    renewed = anyio.Event()

    class Recording(MemoryRateLimitBackend):
        async def renew(self, slots, lease, lease_ttl):  # type: ignore[no-untyped-def]
            renewed.set()

    limiter = RateLimiter(Recording(), lease_ttl=0.03)
    async with limiter, limiter.limit("key:a", RateLimits(max_concurrency=1)):
        with anyio.fail_after(10):
            await renewed.wait()


async def test_limiters_sharing_a_store_never_share_a_lease(make_limiter: Factory) -> None:
    """Two processes' limiters on one store count each other's slots: their lease ids differ even
    when both number their calls the same way."""
    clock = Clock()
    one, two = make_limiter(clock), make_limiter(clock)
    limits = RateLimits(max_concurrency=2)
    async with one.limit("key:a", limits), two.limit("key:a", limits):
        for limiter in (one, two):
            with pytest.raises(RateLimitExceeded):
                async with limiter.limit("key:a", limits):
                    pass
    async with one.limit("key:a", limits), two.limit("key:a", limits):  # both slots came back
        pass
