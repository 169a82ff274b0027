"""Every fault class of the mock, for every adapter, becomes the right `ProviderError`."""

from __future__ import annotations

import socket

import anyio
import pytest

from mcp_gateway._errors import ProviderError
from mcp_gateway.providers import CompletionRequest, Message, provider_kinds
from tests.providers.support import KEY, KINDS, base_url_for

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest("m", (Message("system", "Be brief."), Message("user", "one two three four five six")))
# One short timeout per case, the others long and the stall longer still: which timeout fires
# cannot depend on how fast a busy machine delivers the first chunk.
SLOW = {"first_token_timeout_s": 30, "idle_timeout_s": 30, "total_timeout_s": 60}


async def fail(provider, *, stream: bool, request: CompletionRequest = REQUEST) -> tuple[ProviderError, list[str]]:
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    with anyio.fail_after(30), pytest.raises(ProviderError) as caught:
        await provider.complete(request, on_text=on_text if stream else None)
    error = caught.value
    assert KEY not in str(error) and KEY not in repr(error.__dict__)
    assert error.provider == provider.name and str(error).startswith(f"provider '{provider.name}' failed: ")
    assert len(error.cause) <= 400
    return error, pieces


def facts(error: ProviderError) -> tuple[str, bool, int | None, float | None, bool]:
    return error.kind, error.retryable, error.status, error.retry_after, error.output_started


STATUS_FAULTS = [
    # fault, kind, retryable, status
    ("500", "server", True, 500),
    ("503", "server", True, 503),
    ("529", "overloaded", True, 529),
    ("400", "bad_request", False, 400),
    ("401", "auth", False, 401),
    ("403", "auth", False, 403),
    ("404", "not_found", False, 404),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(("fault", "expected_kind", "retryable", "status"), STATUS_FAULTS,
                         ids=[f[0] for f in STATUS_FAULTS])
async def test_http_status_faults(kind, stream, fault, expected_kind, retryable, status, make):
    error, pieces = await fail(make(kind, fault=fault), stream=stream)
    assert facts(error) == (expected_kind, retryable, status, None, False) and not pieces
    assert f"HTTP {status}" in error.cause and "mock" in error.cause  # the provider's own message is kept


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_rate_limit_carries_retry_after(kind, stream, make):
    error, _ = await fail(make(kind, fault="429"), stream=stream)
    assert facts(error) == ("rate_limit", True, 429, 1.0, False)
    error, _ = await fail(make(kind, fault="429,retry_after=1.5"), stream=stream)
    assert error.retry_after == 1.5  # retry-after-ms is exact where Retry-After rounds up to 2


@pytest.mark.parametrize("kind", KINDS)
async def test_quota_exhaustion_is_not_retryable(kind, make):
    error, _ = await fail(make(kind, fault="quota"), stream=False)
    # Anthropic's real equivalent is a 400 "credit balance is too low"; the others a 429.
    assert facts(error) == ("quota", False, 400 if kind == "anthropic" else 429, None, False)


@pytest.mark.parametrize("kind", KINDS)
async def test_malformed_json(kind, make):
    error, _ = await fail(make(kind, fault="malformed"), stream=False)
    assert facts(error) == ("malformed", True, None, None, False)
    error, pieces = await fail(make(kind, fault="malformed"), stream=True)
    assert facts(error) == ("malformed", True, None, None, True) and pieces  # after the first chunk


@pytest.mark.parametrize("kind", KINDS)
async def test_stream_cut_mid_way_and_stream_without_end_marker(kind, make):
    error, pieces = await fail(make(kind, fault="cut=3"), stream=True)
    assert facts(error) == ("stream", True, None, None, True) and len(pieces) == 3
    error, pieces = await fail(make(kind, fault="no_end"), stream=True)
    assert facts(error) == ("stream", True, None, None, True) and "end marker" in error.cause
    assert "".join(pieces).startswith("Mock answer")
    error, _ = await fail(make(kind, fault="cut"), stream=False)  # half a body, then the connection drops
    assert facts(error) == ("stream", True, None, None, False)


@pytest.mark.parametrize("kind", KINDS)
async def test_stalls_and_slow_first_token_time_out(kind, make):
    error, pieces = await fail(make(kind, fault="stall", **{**SLOW, "idle_timeout_s": 0.25}), stream=True)
    assert facts(error) == ("timeout", True, None, None, True) and len(pieces) == 1
    assert "idle_timeout_s=0.25" in error.cause
    slow_start = make(kind, fault="first_token_delay=300000", **{**SLOW, "first_token_timeout_s": 0.25})
    error, pieces = await fail(slow_start, stream=True)
    assert facts(error) == ("timeout", True, None, None, False) and not pieces
    assert "first_token_timeout_s=0.25" in error.cause
    error, _ = await fail(make(kind, fault="stall", **{**SLOW, "total_timeout_s": 0.5}), stream=False)
    assert facts(error) == ("timeout", True, None, None, False) and "total_timeout_s=0.5" in error.cause


@pytest.mark.parametrize("kind", KINDS)
async def test_total_timeout_bounds_a_call_whose_other_limits_are_longer(kind, make):
    """One deadline serves first byte, idle gaps and the total: the shortest bound fires, and the
    error names the limit that did."""
    late = {"first_token_timeout_s": 60, "idle_timeout_s": 60, "total_timeout_s": 0.3}
    error, pieces = await fail(make(kind, fault="first_token_delay=300000", **late), stream=True)
    assert facts(error) == ("timeout", True, None, None, False) and "total_timeout_s=0.3" in error.cause
    error, pieces = await fail(make(kind, fault="stall", **late), stream=True)  # started, then silent
    assert facts(error) == ("timeout", True, None, None, True) and "total_timeout_s=0.3" in error.cause
    assert len(pieces) == 1
    error, _ = await fail(make(kind, fault="latency=300000", **late), stream=False)
    assert facts(error) == ("timeout", True, None, None, False) and "total_timeout_s=0.3" in error.cause


@pytest.mark.parametrize("kind", KINDS)
async def test_a_whole_answer_that_does_not_come_hits_the_first_byte_timeout(kind, make, mock):
    """Not only streams: a non-streamed call gives up when no response starts within
    first_token_timeout_s, instead of waiting for the total timeout (default 300 s)."""
    provider = make(kind, fault="latency=300000", first_token_timeout_s=0.3)  # five minutes
    error, _ = await fail(provider, stream=False)
    assert facts(error) == ("timeout", True, None, None, False)
    assert "no response within first_token_timeout_s=0.3" in error.cause
    with anyio.fail_after(30):  # the abandoned request was closed, not left hanging
        while (await mock.stats())["disconnected"] < 1:
            await anyio.sleep(0.02)
    # A response that starts in time is read to its end, however long the first-byte limit.
    assert (await make(kind, fault="latency=50", first_token_timeout_s=0.3).complete(REQUEST)).text


def test_timeout_defaults_bound_a_silent_provider():
    from mcp_gateway.providers._http import HttpOptions, SettingsReader

    options = HttpOptions.read(SettingsReader("openai", {}, ()))
    assert (options.connect_timeout, options.first_token_timeout, options.idle_timeout,
            options.total_timeout) == (5.0, 120.0, 30.0, 300.0)
    tuned = HttpOptions.read(SettingsReader("openai", {"first_token_timeout_s": 600}, ("first_token_timeout_s",)))
    assert tuned.first_token_timeout == 600 and tuned.idle_timeout == 30.0  # idle no longer follows it


@pytest.mark.parametrize("kind", KINDS)
async def test_latency_under_the_timeouts_is_fine(kind, make):
    provider = make(kind, fault="latency=30,first_token_delay=30,chunk_delay=2",
                    first_token_timeout_s=5, idle_timeout_s=5, total_timeout_s=10)
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    assert (await provider.complete(REQUEST, on_text=on_text)).text == "".join(pieces)


@pytest.mark.parametrize("kind", KINDS)
async def test_empty_answer(kind, make):
    """A 200 with no content is no answer: Gemini's SAFETY block is a non-retryable content_filter
    failure, any other an `empty` failure that routing may retry or fail over; both keep the usage."""
    provider = make(kind, fault="empty")
    for stream in (False, True):
        error, pieces = await fail(provider, stream=stream)
        assert not pieces
        if kind == "gemini":
            assert facts(error) == ("content_filter", False, None, None, False)
        else:
            assert facts(error) == ("empty", True, None, None, False)
            assert "no content" in error.cause
        assert error.usage is not None and error.usage.input_tokens > 0


def test_an_empty_answer_cut_by_max_tokens_is_not_retried_on_the_same_target():
    from mcp_gateway.providers import Usage
    from mcp_gateway.providers._http import WireError, finalise

    with pytest.raises(WireError) as caught:
        finalise(REQUEST, text="", finish="length", usage=Usage(10, 64, reasoning_tokens=64), model="m")
    assert (caught.value.kind, caught.value.retryable, caught.value.usage.output_tokens) == ("empty", False, 64)


@pytest.mark.parametrize("kind", KINDS)
async def test_fail_first_then_succeed(kind, make):
    provider = make(kind, fault="fail_first=1:503", headers={"x-mock-key": f"ff-{kind}"})
    error, _ = await fail(provider, stream=True)
    assert error.kind == "server" and error.retryable
    assert (await provider.complete(REQUEST)).text.startswith("Mock answer")


@pytest.mark.parametrize("kind", KINDS)
async def test_connection_refused(kind):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = provider_kinds()[kind](
        "down", {"trust_env": False, "connect_timeout_s": 2},
        base_url=base_url_for(kind, f"http://127.0.0.1:{port}"), api_key=KEY, headers={})
    try:
        error, _ = await fail(provider, stream=False)
        assert facts(error) == ("connect", True, None, None, False)
    finally:
        await provider.aclose()


async def test_total_timeout_during_a_slow_consumer_is_a_provider_error(make):
    """The deadline can fire inside the caller's on_text: still a ProviderError (kind timeout)."""
    provider = make("openai", total_timeout_s=2)  # room for the first chunk on a busy machine

    async def slow(piece: str) -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(30), pytest.raises(ProviderError) as caught:
        await provider.complete(REQUEST, on_text=slow)
    assert facts(caught.value) == ("timeout", True, None, None, True)


@pytest.mark.parametrize("kind", KINDS)
async def test_errors_raised_by_on_text_pass_through_unchanged(kind, make):
    import httpx2

    raised = httpx2.ReadError("the caller's own client failed")  # an httpx2 error, yet not the provider's

    async def broken(piece: str) -> None:
        raise raised

    with pytest.raises(httpx2.ReadError) as caught:
        await make(kind).complete(REQUEST, on_text=broken)
    assert caught.value is raised
