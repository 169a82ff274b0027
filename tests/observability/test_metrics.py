"""Metrics: names and labels on a private registry, label safety, the /metrics endpoint."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import httpx2
import pytest
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    enable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route

from mcp_gateway.observability.metrics import GatewayMetrics, LabelGuard, _Family, metrics_endpoint


def samples(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    return samples(metrics)[(name, tuple(sorted(labels.items())))]


def test_recording_api_and_names() -> None:
    m = GatewayMetrics()
    m.request("tools/call", "summarize", "ok", 0.2)
    m.request("tools/call", "summarize", "error", 0.1, error_kind="rate_limit")
    m.provider_call("openai", "gpt-4o", 1.5)
    m.provider_call("openai", "gpt-4o", 0.5, error_type="timeout")
    m.first_chunk("openai", "gpt-4o", 0.3)
    m.usage(tool="summarize", route="default", provider="openai", model="gpt-4o", input_tokens=100,
            output_tokens=20, cached_tokens=60, cost_usd=0.0025)
    m.session_opened()
    m.session_opened()
    m.session_closed()
    m.rate_limited("key", "requests_per_minute", "summarize")
    m.auth_failed("jwt")

    assert value(m, "mcp_gateway_requests_total", method="tools/call", tool="summarize", outcome="ok") == 1
    assert value(m, "mcp_gateway_errors_total", method="tools/call", tool="summarize",
                 error_kind="rate_limit") == 1
    assert value(m, "mcp_gateway_request_duration_seconds_count", method="tools/call", tool="summarize",
                 outcome="ok") == 1
    genai = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai",
             "gen_ai_request_model": "gpt-4o"}
    assert value(m, "gen_ai_client_operation_duration_seconds_count", **genai, error_type="none") == 1
    assert value(m, "gen_ai_client_operation_duration_seconds_count", **genai, error_type="timeout") == 1
    assert value(m, "gen_ai_client_operation_time_to_first_chunk_seconds_sum", **genai) == pytest.approx(0.3)
    assert value(m, "gen_ai_client_token_usage_sum", **genai, gen_ai_token_type="input") == 100
    assert value(m, "gen_ai_client_token_usage_sum", **genai, gen_ai_token_type="output") == 20
    route = {"tool": "summarize", "route": "default", "gen_ai_provider_name": "openai",
             "gen_ai_request_model": "gpt-4o"}
    assert value(m, "mcp_gateway_tokens_total", **route, gen_ai_token_type="cached") == 60
    assert value(m, "mcp_gateway_cost_usd_total", **route) == pytest.approx(0.0025)
    assert value(m, "mcp_gateway_active_sessions", transport="http") == 1
    assert value(m, "mcp_gateway_rate_limit_rejections_total", scope="key", limit="requests_per_minute",
                 tool="summarize") == 1
    assert value(m, "mcp_gateway_auth_failures_total", kind="jwt") == 1
    # a private registry: nothing leaked into the process-global one
    assert REGISTRY.get_sample_value("mcp_gateway_requests_total",
                                     {"method": "tools/call", "tool": "summarize", "outcome": "ok"}) is None
    GatewayMetrics()  # a second instance does not clash with the first


@pytest.mark.parametrize("raw", [
    "mgw_0123456789abcdef_" + "a" * 48,
    "sk-proj-abcdefghijklmnop",
    "eyJhbGciOiJIUzI1NiJ9",
    "bearer_abc123",
    "a1b2c3d4e5f6a7b8c9d0e1f2a3b4",  # a long random-looking run
])
def test_secret_shaped_values_never_become_labels(raw: str) -> None:
    m = GatewayMetrics()
    m.request("tools/call", raw, "error", 0.01, error_kind="not_found")
    body = m.render()[0].decode()
    assert raw not in body
    assert 'tool="_redacted"' in body


def test_label_guard_shapes_and_cardinality() -> None:
    guard = LabelGuard(max_values_per_label=3)
    assert guard.clean("tool", None) == "none" and guard.clean("tool", "") == "none"
    assert guard.clean("tool", "has space") == "_invalid"
    assert guard.clean("tool", "x" * 81) == "_invalid"
    assert guard.clean("tool", 'quote"') == "_invalid"
    assert guard.clean("model", "claude-3-5-sonnet-20241022") == "claude-3-5-sonnet-20241022"
    assert [guard.clean("tool", t) for t in ("a", "b", "c", "d", "a")] == ["a", "b", "c", "_other", "a"]
    guard.allow("tool", ["summarize"])
    assert guard.clean("tool", "summarize") == "summarize" and guard.clean("tool", "a") == "_other"


def test_allow_list_after_reload_clears_cached_children() -> None:
    m = GatewayMetrics()
    m.request("tools/call", "old_tool", "ok", 0.01)
    m.allow("tool", ["new_tool"])
    m.request("tools/call", "old_tool", "ok", 0.01)
    assert value(m, "mcp_gateway_requests_total", method="tools/call", tool="_other", outcome="ok") == 1


@pytest.mark.anyio
async def test_metrics_endpoint() -> None:
    m = GatewayMetrics()
    m.request("tools/list", None, "ok", 0.001)
    app = Starlette(routes=[Route("/metrics", metrics_endpoint(m), methods=["GET"])])
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client:
        plain = await client.get("/metrics")
        assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/plain")
        assert 'mcp_gateway_requests_total{method="tools/list",outcome="ok",tool="none"} 1.0' in plain.text
        om = await client.get("/metrics", headers={"accept": "application/openmetrics-text"})
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.rstrip().endswith("# EOF")


class _Reference:
    """What GatewayMetrics recorded before it kept its own series: prometheus_client's metrics,
    with the same names, labels and buckets, updated child by child."""

    def __init__(self, like: GatewayMetrics, guard: LabelGuard) -> None:
        self.registry, self.guard = CollectorRegistry(), guard
        kinds = {"counter": Counter, "histogram": Histogram, "gauge": Gauge}
        for name, family in vars(like).items():
            if isinstance(family, _Family):
                extra = {"buckets": family.bounds} if family.kind == "histogram" else {}
                metric = kinds[family.kind](family.name, family.doc, family.labels, registry=self.registry, **extra)
                setattr(self, name, self._labelled(metric, family.labels))

    def _labelled(self, metric: Any, labels: tuple[str, ...]) -> Any:
        return lambda *values: metric.labels(*(self.guard.clean(k, v) for k, v in zip(labels, values, strict=True)))

    def request(self, method, tool, outcome, seconds, error_kind=None):
        self._requests(method, tool, outcome).inc()
        self._request_seconds(method, tool, outcome).observe(seconds)
        if outcome != "ok":
            self._errors(method, tool, error_kind or outcome).inc()

    def provider_call(self, provider, model, seconds, *, operation="chat", error_type=None):
        self._operation_seconds(operation, provider, model, error_type).observe(seconds)

    def first_chunk(self, provider, model, seconds, *, operation="chat"):
        self._first_chunk_seconds(operation, provider, model).observe(seconds)

    def usage(self, *, tool, route, provider, model, input_tokens=0, output_tokens=0, cached_tokens=0,
              cost_usd=None, operation="chat"):
        self._token_usage(operation, provider, model, "input").observe(input_tokens)
        self._token_usage(operation, provider, model, "output").observe(output_tokens)
        for kind, count in (("input", input_tokens), ("output", output_tokens), ("cached", cached_tokens)):
            if count:
                self._tokens(tool, route, provider, model, kind).inc(count)
        if cost_usd:
            self._cost(tool, route, provider, model).inc(cost_usd)

    def session_opened(self, transport="http"):
        self._sessions(transport).inc()

    def session_closed(self, transport="http"):
        self._sessions(transport).dec()

    def set_active_sessions(self, count, transport="http"):
        self._sessions(transport).set(count)

    def rate_limited(self, scope, limit, tool=None):
        self._rate_limited(scope, limit, tool).inc()

    def deprecated_call(self, tool, version, principal):
        self._deprecated_calls(tool, version, principal).inc()

    def auth_failed(self, kind):
        self._auth_failures(kind).inc()

    def allow(self, label, values):
        self.guard.allow(label, values)


_HOSTILE_AMOUNTS = [0, 0, 1, 3, 0.1, 0.2, 2.5e-7, 1e300, 10**30, -3.5, float("nan"), float("inf"), float("-inf"), 0.005,
                    0.0050000001, 300, 300.0001, 67108864, 67108865]
_HOSTILE_LABELS = [None, "", "summarize", "tool.v2", "has space", "x" * 81, "sk-proj-abcdefghijklmnop", "été",
                   'quote"', "a1b2c3d4e5f6a7b8c9d0e1f2a3b4", "t1", "t2", "t3", "t4", "t5", "t6", 7]


def _drive(m: Any, rng: random.Random) -> list[str]:
    """A random mix of every recording method; returns what each call raised (must match too)."""
    outcomes = []
    def label() -> object:  # mostly a few values (so cached series are found again), at times any
        return rng.choice(["summarize", "t1", None] if rng.random() < 0.8 else _HOSTILE_LABELS)

    def amount() -> object:
        return rng.choice([0, 3, 0.25] if rng.random() < 0.6 else _HOSTILE_AMOUNTS)

    calls = [
        lambda: m.request(rng.choice(["tools/call", "prompts/get"]), label(), rng.choice(["ok", "error"]),
                          amount(), error_kind=rng.choice([None, "rate_limit", label()])),
        lambda: m.provider_call(label(), label(), amount(), error_type=rng.choice([None, "timeout"])),
        lambda: m.first_chunk(label(), label(), amount()),
        lambda: m.usage(tool=label(), route=label(), provider=label(), model=label(), input_tokens=amount(),
                        output_tokens=amount(), cached_tokens=rng.choice([0, 0, amount()]),
                        cost_usd=rng.choice([None, 0.0, amount()])),
        lambda: m.session_opened(rng.choice(["http", "stdio"])),
        lambda: m.session_closed(rng.choice(["http", "stdio"])),
        lambda: m.set_active_sessions(rng.choice([0, 3, 2.5]), "http"),
        lambda: m.rate_limited(label(), label(), label()),
        lambda: m.deprecated_call(label(), label(), label()),
        lambda: m.auth_failed(label()),
    ]
    for _ in range(3000):
        try:
            if rng.random() < 0.005:  # a reload's allow-list: cached children are forgotten
                m.allow(rng.choice(["tool", "gen_ai_request_model"]), [label() for _ in range(3)])
            rng.choice(calls)()
            outcomes.append("ok")
        except ValueError as exc:  # a counter given a negative amount refuses it
            outcomes.append(str(exc))
    return outcomes


@pytest.mark.parametrize("created", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exposition_is_prometheus_clients_own(seed: int, created: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """GatewayMetrics keeps plain series and builds samples when scraped: the text and OpenMetrics
    expositions must be byte for byte what prometheus_client's metrics give for the same calls."""
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.25)  # the `_created` stamps
    if not created:
        disable_created_metrics()
    try:
        m = GatewayMetrics(guard=LabelGuard(max_values_per_label=8))
        ref = _Reference(m, LabelGuard(max_values_per_label=8))
        assert _drive(m, random.Random(seed)) == _drive(ref, random.Random(seed))
        registry = ref.registry
        for accept in ("", "application/openmetrics-text; version=1.0.0"):
            encoder, _ = choose_encoder(accept)
            assert m.render(accept)[0] == encoder(registry)
        assert ("_created" in m.render()[0].decode()) is created
    finally:
        enable_created_metrics()


def test_scrape_while_recording_from_threads() -> None:
    """Recording is thread-safe (as prometheus_client's is): no update is lost, totals add up."""
    m = GatewayMetrics()

    def work() -> None:
        for i in range(2000):
            m.request("tools/call", "summarize", "ok", 0.01)
            if i % 20 == 0:
                m.render()  # scrapes interleave

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert value(m, "mcp_gateway_requests_total", method="tools/call", tool="summarize", outcome="ok") == 8000
    assert value(m, "mcp_gateway_request_duration_seconds_bucket", method="tools/call", tool="summarize",
                 outcome="ok", le="0.01") == 8000
