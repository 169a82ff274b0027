"""The call pipeline every surface runs: each protection in one step, in one order, and every call
(refused ones included) counted in the metrics; checked in-process with the offline mock."""

from __future__ import annotations

import textwrap

import anyio
import anyio.lowlevel
import pytest

from mcp_gateway import ToolNotFoundError
from mcp_gateway._errors import ShuttingDownError
from mcp_gateway.security import CallDeadlineError, MemoryRateLimitBackend, RateLimiter, RateLimitExceeded
from mcp_gateway.security import RateLimits, RequestLimitError, ScopeSet
from mcp_gateway.server import CallPipeline, GatewayServer, Reloader, ToolCall
from mcp_gateway.server._protections import Caller
from mcp_gateway.sessions import SessionError

pytestmark = pytest.mark.anyio

CONFIG = textwrap.dedent("""
    format: mcp-gateway/1
    providers:
      offline: {kind: mock}
      slow: {kind: mock, settings: {latency_ms: 5000}}
    models:
      default: {provider: offline, model: mock-1}
      slow: {provider: slow, model: mock-1}
    limits: {max_argument_chars: 100}
    tools:
      - name: echo
        description: Say it back.
        model: default
        input_schema: {type: object, properties: {text: {type: string}}}
        messages: [{role: user, content: "{{ text }}"}]
      - name: slow
        description: Takes five seconds.
        model: slow
        input_schema: {type: object, properties: {text: {type: string}}}
        messages: [{role: user, content: "{{ text }}"}]
""")


@pytest.fixture
def server(tmp_path):
    (tmp_path / "gateway.yaml").write_text(CONFIG)
    return GatewayServer.from_config(tmp_path / "gateway.yaml")


def caller(*scopes: str, limits: RateLimits | None = None) -> Caller:
    return Caller("key:test", ScopeSet.of(scopes), limits)


def counted(server: GatewayServer, tool: str, outcome: str) -> float:
    value = server.protections.metrics.registry.get_sample_value(
        "mcp_gateway_requests_total", {"method": "tools/call", "tool": tool, "outcome": outcome})
    return value or 0.0


async def test_a_call_runs_through_every_step_and_is_accounted(server):
    pipeline = CallPipeline(server.live, server.protections)
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    call = ToolCall("echo", {"text": "through the pipeline"}, caller("tools:*"), on_text=on_text)
    answer = await pipeline.run(call)
    assert "through the pipeline" in answer.text and "".join(pieces) == answer.text
    assert call.record.outcome == "ok" and call.record.input_tokens > 0 and call.record.output_tokens > 0
    assert counted(server, "echo", "ok") == 1
    assert server.live.in_flight == 0


async def test_each_refusal_comes_from_its_step_and_is_counted(server):
    pipeline = CallPipeline(server.live, server.protections)
    hidden = ToolCall("echo", {"text": "x"}, caller("tools:other"))
    with pytest.raises(ToolNotFoundError):
        await pipeline.run(hidden)
    assert hidden.record.error_kind == "out_of_scope"
    too_big = ToolCall("echo", {"text": "x" * 200}, caller("tools:*"))
    with pytest.raises(RequestLimitError, match="the limit is 100"):
        await pipeline.run(too_big)
    assert counted(server, "echo", "error") == 2
    assert server.live.gateway.router.ledger.snapshot()["process"]["calls"] == 0  # no provider was called


async def test_rate_limit_and_deadline_steps(server):
    guard = server.protections
    guard.limiter = RateLimiter(MemoryRateLimitBackend())
    guard.call_deadline_s = 0.2
    pipeline = CallPipeline(server.live, guard)
    limited = caller("tools:*", limits=RateLimits(requests_per_minute=1))
    await pipeline.run(ToolCall("echo", {"text": "first"}, limited))
    refused = ToolCall("echo", {"text": "second"}, limited)
    with pytest.raises(RateLimitExceeded):
        await pipeline.run(refused)
    # a refusal is marked on the call's record, counted as an error and as a rate-limit rejection
    assert (refused.record.outcome, refused.record.error_kind) == ("error", "rate_limit")
    assert counted(server, "echo", "error") == 1
    assert guard.metrics.registry.get_sample_value(
        "mcp_gateway_rate_limit_rejections_total",
        {"scope": "key", "limit": "requests_per_minute", "tool": "echo"}) == 1
    with anyio.fail_after(5), pytest.raises(CallDeadlineError, match="deadline of 0.2 s"):
        await pipeline.run(ToolCall("slow", {"text": "late"}, caller("tools:*")))
    assert counted(server, "slow", "error") == 1
    assert counted(server, "echo", "error") == 1  # the deadline's error is not a rate-limit refusal


async def test_a_surface_supplies_its_own_endpoint(server):
    pipeline = CallPipeline(server.live, server.protections)

    async def builtin(call: ToolCall) -> dict:
        return {"ran": call.name}

    assert await pipeline.run(ToolCall("session_start", {}, caller("tools:*")), builtin) == {"ran": "session_start"}
    with pytest.raises(ToolNotFoundError):  # the scope step still applies
        await pipeline.run(ToolCall("session_start", {}, caller("tools:echo")), builtin)


async def test_replaced_steps_and_a_surface_endpoint_run_in_order(server):
    pipeline = CallPipeline(server.live, server.protections)
    seen: list[str] = []

    def step(name: str):
        async def run(call, call_next):
            seen.append(name)
            return await call_next(call)
        return run

    pipeline.steps = (*pipeline.steps[:2], step("mine"), *pipeline.steps[2:])  # the chain follows
    answer = await pipeline.run(ToolCall("echo", {"text": "hi"}, caller("tools:*")))
    assert seen == ["mine"] and "hi" in answer.text

    async def endpoint(call):
        seen.append(f"endpoint {call.name}")
        return "own"

    assert await pipeline.run(ToolCall("echo", {"text": "x"}, caller("tools:*")), endpoint) == "own"
    assert seen == ["mine", "mine", "endpoint echo"]
    assert counted(server, "echo", "ok") == 2


async def test_trace_step_opens_a_span_once_a_provider_is_set(server, monkeypatch):
    """Without a tracer provider the trace step opens no span; a global provider set later (as a
    deployment's OTel setup does) gets one span per call, with the usage of the answer."""
    from opentelemetry import trace

    from tests.observability.test_tracing import FakeProvider

    pipeline = CallPipeline(server.live, server.protections)
    assert not pipeline.tracer.active()
    await pipeline.run(ToolCall("echo", {"text": "hi"}, caller("tools:*")))
    provider = FakeProvider()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)  # what trace.set_tracer_provider sets, once per process
    assert pipeline.tracer.active()
    await pipeline.run(ToolCall("echo", {"text": "hi"}, caller("tools:*")))
    [span] = provider.tracer.spans
    assert span.name == "execute_tool echo" and span.attributes["gen_ai.tool.name"] == "echo"
    assert span.attributes["gen_ai.usage.input_tokens"] > 0 and span.attributes["gen_ai.response.model"] == "mock-1"


async def test_time_to_first_piece_is_measured_for_streamed_calls_only(server):
    pipeline = CallPipeline(server.live, server.protections)
    registry = server.protections.metrics.registry
    labels = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "offline", "gen_ai_request_model": "mock-1"}

    def first_chunks() -> float:
        return registry.get_sample_value("gen_ai_client_operation_time_to_first_chunk_seconds_count", labels) or 0.0

    await pipeline.run(ToolCall("echo", {"text": "hi"}, caller("tools:*")))
    assert first_chunks() == 0
    pieces: list[str] = []

    async def on_text(piece: str) -> None:
        pieces.append(piece)

    await pipeline.run(ToolCall("echo", {"text": "hi there"}, caller("tools:*"), on_text=on_text))
    assert pieces and first_chunks() == 1
    # measured from the call's start (not from any other moment): under a second with the offline mock
    assert 0 <= registry.get_sample_value("gen_ai_client_operation_time_to_first_chunk_seconds_sum", labels) < 1


async def test_the_chain_follows_a_reload_that_enables_sessions_and_limits(server, tmp_path):
    """Steps that cannot act are left out of the chain (no session store: no session step); a
    reload (what SIGHUP and --watch run) that configures them puts them back for the next call."""
    pipeline = CallPipeline(server.live, server.protections)
    assert pipeline.open_session not in pipeline.active_steps
    assert pipeline.open_session in pipeline.steps  # still listed: it applies once sessions are configured
    unknown = ToolCall("echo", {"text": "x" * 60}, caller("tools:*"), session_handle="s_unknown")
    assert "x" * 60 in (await pipeline.run(unknown)).text  # no session store: the handle is not looked at
    assert unknown.record.session_id is None

    config = tmp_path / "gateway.yaml"
    config.write_text(CONFIG.replace("max_argument_chars: 100", "max_argument_chars: 50") + "sessions: {store: memory}\n")
    assert await Reloader(server.live, config).reload(announce=False)

    with pytest.raises(SessionError, match="s_unknown"):
        await pipeline.run(ToolCall("echo", {"text": "x"}, caller("tools:*"), session_handle="s_unknown"))
    with pytest.raises(RequestLimitError, match="the limit is 50"):
        await pipeline.run(ToolCall("echo", {"text": "x" * 60}, caller("tools:*")))
    sessions = server.live.gateway.sessions
    assert sessions is not None
    session = await sessions.start("key:test")
    known = ToolCall("echo", {"text": "hi"}, caller("tools:*"), session_handle=session.id)
    await pipeline.run(known)
    assert known.session is not None and known.record.session_id == session.id
    assert pipeline.open_session in pipeline.active_steps

    config.write_text(CONFIG)  # and back: the step leaves the chain again
    assert await Reloader(server.live, config).reload(announce=False)
    assert pipeline.open_session not in pipeline.active_steps
    assert "x" * 60 in (await pipeline.run(ToolCall("echo", {"text": "x" * 60}, caller("tools:*"),
                                                    session_handle=session.id))).text


async def test_the_chain_follows_protections_set_after_it_was_built(server):
    """A rate limiter or a deadline configured after the pipeline was built applies to the next call,
    on the default endpoint and on a surface's own (no limiter: no rate-limit step)."""
    guard = server.protections
    guard.call_deadline_s = None
    pipeline = CallPipeline(server.live, guard)
    assert pipeline.rate_limit not in pipeline.active_steps and pipeline.deadline in pipeline.active_steps
    limited = caller("tools:*", limits=RateLimits(requests_per_minute=1))
    for _ in range(3):
        await pipeline.run(ToolCall("echo", {"text": "free"}, limited))  # no limiter: no limit

    guard.limiter = RateLimiter(MemoryRateLimitBackend())
    guard.call_deadline_s = 0.2

    async def own(call: ToolCall) -> str:
        return "own"

    assert await pipeline.run(ToolCall("echo", {"text": "first"}, limited), own) == "own"
    with pytest.raises(RateLimitExceeded):
        await pipeline.run(ToolCall("echo", {"text": "second"}, limited))
    with anyio.fail_after(5), pytest.raises(CallDeadlineError, match="deadline of 0.2 s"):
        await pipeline.run(ToolCall("slow", {"text": "late"}, caller("tools:*")))
    assert pipeline.rate_limit in pipeline.active_steps


async def test_one_scope_counts_the_call_and_ends_it_at_its_deadline_or_at_shutdown(server):
    """`live.call` is the deadline (CallDeadlineError naming it) and what shutdown cancels
    (ShuttingDownError, even when a deadline is set); either way the call stops counting."""
    live = server.live
    with live.call(60):
        assert live.in_flight == 1
        await anyio.lowlevel.checkpoint()
    assert live.in_flight == 0
    with anyio.fail_after(5), pytest.raises(CallDeadlineError, match=r"did not finish within its deadline of 0.05 s"):
        with live.call(0.05):
            await anyio.sleep_forever()
    assert live.in_flight == 0

    errors: list[BaseException] = []
    started = anyio.Event()

    async def call(deadline_s: float | None) -> None:
        try:
            with live.call(deadline_s):
                started.set()
                await anyio.sleep_forever()
        except ShuttingDownError as exc:
            errors.append(exc)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for deadline_s in (None, 600):
                started = anyio.Event()
                tg.start_soon(call, deadline_s)
                await started.wait()
            assert live.in_flight == 2
            assert live.cancel_calls() == 2
    assert len(errors) == 2 and all("shutting down" in str(e) for e in errors)
    assert live.in_flight == 0
    with pytest.raises(ValueError, match="own error"):  # an error of the call passes through unchanged
        with live.call(60):
            raise ValueError("own error")
    assert live.in_flight == 0
