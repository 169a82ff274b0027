"""Cancelling a call closes the upstream request at once; the API key never leaks."""

from __future__ import annotations

import logging

import anyio
import pytest

from mcp_gateway._errors import ProviderError
from mcp_gateway.providers import CompletionRequest, Message, provider_kinds
from tests.providers.support import KEY, KINDS

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest("m", (Message("user", "tell me a long story about otters"),))


async def wait_for(predicate, mock) -> dict[str, int]:
    while True:
        stats = await mock.stats()
        if predicate(stats):
            return stats
        await anyio.sleep(0.01)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_cancel_during_a_stall_disconnects_upstream(kind, stream, make, mock):
    provider = make(kind, fault="stall")  # the mock hangs for 300 s unless the client goes away
    first_piece = anyio.Event()

    async def on_text(piece: str) -> None:
        first_piece.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: provider.complete(REQUEST, on_text=on_text if stream else None))
            if stream:
                await first_piece.wait()  # the answer has started, then stalls
            await wait_for(lambda s: s["in_flight"] == 1, mock)
            group.cancel_scope.cancel()
        stats = await wait_for(lambda s: s["in_flight"] == 0, mock)
    assert stats == {"in_flight": 0, "completed": 0, "disconnected": 1}
    # The provider stays usable after a cancelled call.
    assert (await make(kind).complete(REQUEST)).text.startswith("Mock answer")


@pytest.mark.parametrize("kind", KINDS)
async def test_key_is_not_in_repr_errors_or_logs(kind, make, mock, caplog):
    caplog.set_level(logging.DEBUG)
    provider = make(kind, fault="401")
    assert KEY not in repr(provider) and KEY not in str(provider) and provider.name in repr(provider)
    for stream in (False, True):
        with pytest.raises(ProviderError) as caught:
            await provider.complete(REQUEST, on_text=(lambda _: anyio.sleep(0)) if stream else None)
        error = caught.value
        assert error.kind == "auth"
        for text in (str(error), repr(error), error.cause, repr(error.args)):
            assert KEY not in text
    await make(kind).complete(CompletionRequest("m", REQUEST.messages, params={"unknown_param": 1}))
    assert KEY not in caplog.text
    recorded = await mock.requests()
    assert recorded and KEY not in str(recorded)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_settings_are_config_errors_that_never_echo_values(kind):
    factory = provider_kinds()[kind]
    with pytest.raises(ValueError, match="unknown setting.*known:"):
        factory("p", {"latency": 1}, base_url=None, api_key=KEY, headers={})
    with pytest.raises(ValueError, match="'total_timeout_s' must be a number") as caught:
        factory("p", {"total_timeout_s": KEY}, base_url=None, api_key=KEY, headers={})
    assert KEY not in str(caught.value)
    with pytest.raises(ValueError, match="must be greater than 0"):
        factory("p", {"connect_timeout_s": 0}, base_url=None, api_key=KEY, headers={})
    with pytest.raises(ValueError, match="base_url"):
        factory("p", {}, base_url="ftp://example.com", api_key=KEY, headers={})
    default = factory("p", {}, base_url=None, api_key=None, headers={})
    assert default.base_url == {
        "openai": "https://api.openai.com/v1",
        "anthropic": "https://api.anthropic.com",
        "gemini": "https://generativelanguage.googleapis.com",
        "ollama": "http://localhost:11434",
    }[kind]


async def test_aclose_is_idempotent_and_the_clients_are_lazy(make):
    provider = make("openai")
    assert provider._clients == [None] * 250  # 1,000 connections in pools of 4, none opened yet
    await provider.complete(REQUEST)
    await provider.complete(REQUEST)
    opened = [c for c in provider._clients if c is not None]
    assert len(opened) == 1 and provider._clients[0] is opened[0]  # one call at a time: the first pool only
    await provider.aclose()
    await provider.aclose()
    assert provider._clients == [None] * 250 and all(c.is_closed for c in opened)


async def test_calls_one_at_a_time_reuse_one_connection(make, mock):
    """Sequential calls (whole and streamed) go out on the same warm connection, not one per pool."""
    provider = make("openai")

    async def ignore(piece: str) -> None:
        pass

    for index in range(6):
        await provider.complete(REQUEST, on_text=ignore if index % 2 else None)
    peers = {r["peer"] for r in await mock.requests()}
    assert len(peers) == 1 and None not in peers


async def test_concurrent_calls_fill_the_first_pool_before_the_next(make, mock):
    """Pools fill in order: calls in flight beyond one pool's share spill into the next, and each
    pool's count of calls in flight returns to zero when they end (also on failure)."""
    provider = make("openai", fault="latency=300", max_connections=3)  # 3 connections: one pool
    assert len(provider._clients) == 1
    spread = make("openai", fault="latency=300", max_connections=10)  # pools of 4, 3 and 3
    assert len(spread._clients) == 3 and spread._sizes == [4, 3, 3]
    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(spread.complete, REQUEST)
        await anyio.sleep(0)
        assert spread._busy == [4, 2, 0]
    assert spread._busy == [0, 0, 0]
    assert [c is not None for c in spread._clients] == [True, True, False]
    async with anyio.create_task_group() as group:  # a later call uses the first pool again
        group.start_soon(spread.complete, REQUEST)
        await anyio.sleep(0)
        assert spread._busy == [1, 0, 0]
    async with anyio.create_task_group() as group:  # more calls than connections: the least busy pool queues
        for _ in range(13):
            group.start_soon(spread.complete, REQUEST)
        await anyio.sleep(0)
        assert spread._busy == [5, 4, 4]
    assert spread._busy == [0, 0, 0]
    failing = make("openai", fault="500", max_connections=10)
    with pytest.raises(ProviderError):
        await failing.complete(REQUEST)
    assert failing._busy == [0, 0, 0]
    await provider.complete(REQUEST)
    assert provider._busy == [0]


async def test_calls_beyond_max_connections_wait_for_a_free_connection(make, mock):
    """The pool limit holds (calls queue for a connection, bounded by the call's own deadline, not
    a pool timer) and every queued call is answered."""
    provider = make("openai", fault="latency=100", max_connections=2)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for _ in range(6):
                group.start_soon(provider.complete, REQUEST)
    recorded = await mock.requests()
    assert len(recorded) == 6 and len({r["peer"] for r in recorded}) == 2
    # One connection, held by a stream that sent its first piece and then stalls (idle limit 30 s).
    held = make("openai", fault="stall", max_connections=1, first_token_timeout_s=0.3)
    started = anyio.Event()

    async def first_piece(piece: str) -> None:
        started.set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: held.complete(REQUEST, on_text=first_piece))
            await started.wait()
            with pytest.raises(ProviderError) as caught:
                await held.complete(REQUEST)  # never gets the connection: its own deadline fires
            group.cancel_scope.cancel()
    assert caught.value.kind == "timeout" and "first_token_timeout_s=0.3" in caught.value.cause
    assert len(await mock.requests()) == 7  # the queued call never reached the provider
