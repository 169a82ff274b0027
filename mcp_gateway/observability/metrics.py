"""Prometheus metrics of the gateway, on a registry of its own (never the process-global one).

Names follow the OpenTelemetry GenAI semantic conventions where one exists (OTel dots become
underscores, the unit becomes a suffix, as the OTel->Prometheus mapping does):

    gen_ai_client_operation_duration_seconds           histogram  provider call latency
    gen_ai_client_operation_time_to_first_chunk_seconds histogram time to the first streamed chunk
    gen_ai_client_token_usage                          histogram  tokens per provider call
        labels: gen_ai_operation_name, gen_ai_provider_name, gen_ai_request_model,
                error_type (duration only), gen_ai_token_type (input | output; usage only)

The gateway calls the providers, so it reports the *client* instruments; the conventions'
`gen_ai.server.*` instruments describe model servers. Everything else is `mcp_gateway_*`:

    mcp_gateway_requests_total{method,tool,outcome}
    mcp_gateway_errors_total{method,tool,error_kind}
    mcp_gateway_request_duration_seconds{method,tool,outcome}
    mcp_gateway_tokens_total{tool,route,gen_ai_provider_name,gen_ai_request_model,gen_ai_token_type}
        (gen_ai_token_type: input | output | cached; cached is the cached part of input)
    mcp_gateway_cost_usd_total{tool,route,gen_ai_provider_name,gen_ai_request_model}
    mcp_gateway_active_sessions{transport}
    mcp_gateway_rate_limit_rejections_total{scope,limit,tool}
    mcp_gateway_auth_failures_total{kind}

No secret can become a label value: every value passes `LabelGuard`, which admits only short
identifier-like strings, refuses secret shapes (keys, tokens, long random runs) and caps the number
of distinct values per label (beyond it: `_other`), so a client inventing tool names can neither
leak a pasted key into the metrics nor blow up their cardinality. Principals are never labels.

Hot path: label children are cached in a dict per metric, so recording is one dict lookup plus a
float update under the metric's lock; the exposition is built when scraped (see `_Family`).
"""

from __future__ import annotations

import re
import threading
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import metrics as prometheus_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import INF, floatToGoString
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["GatewayMetrics", "LabelGuard", "metrics_endpoint"]

_VALUE_RE = re.compile(r"[A-Za-z0-9_.:/@+\-]{1,80}")
_SECRETISH = re.compile(
    r"mgw_|sk-[A-Za-z0-9]|eyJ[A-Za-z0-9_-]{8,}|(?i:bearer)|[A-Za-z0-9]{32,}"
    r"|(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{24,}")

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Bucket boundaries recommended by the GenAI conventions.
OPERATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
FIRST_CHUNK_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                       10.0)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


class LabelGuard:
    """Turns arbitrary values into safe, bounded label values; thread-safe."""

    def __init__(self, *, max_values_per_label: int = 200) -> None:
        self.max_values = max_values_per_label
        self._lock = threading.Lock()
        self._seen: dict[str, set[str]] = {}
        self._allowed: dict[str, frozenset[str]] = {}

    def allow(self, label: str, values: Iterable[str]) -> None:
        """Admit only these values for `label` (e.g. the configured tool names); others -> `_other`."""
        with self._lock:
            self._allowed[label] = frozenset(values)

    def clean(self, label: str, value: object) -> str:
        if value is None or value == "":
            return "none"
        text = str(value)
        if not _VALUE_RE.fullmatch(text):
            return "_invalid"
        if _SECRETISH.search(text):
            return "_redacted"
        with self._lock:
            allowed = self._allowed.get(label)
            if allowed is not None:
                return text if text in allowed else "_other"
            seen = self._seen.setdefault(label, set())
            if text in seen:
                return text
            if len(seen) >= self.max_values:
                return "_other"
            seen.add(text)
            return text


class _Family:
    """One metric family: its label children (each series keyed by its cleaned values, plus a
    cache from the raw values, cleaned once) and its samples in prometheus_client's layout.

    prometheus_client's own metrics take a lock and check observability on every update, per
    value (a histogram sample is two locked updates); here a series is a few plain floats,
    updated under the lock every family of a `GatewayMetrics` shares (one acquisition records a
    whole call), and the samples are built when scraped. A `_Family` is a registry collector: it
    exposes exactly what the prometheus_client metric of the same kind, name, labels and buckets
    would (tests/observability/test_metrics.py compares them)."""

    kind = ""

    def __init__(self, name: str, doc: str, labels: Sequence[str], guard: LabelGuard,
                 registry: CollectorRegistry, lock: threading.Lock) -> None:
        self.name = name[:-6] if self.kind == "counter" and name.endswith("_total") else name
        self.doc = doc
        self.labels = tuple(labels)
        self.guard = guard
        self.lock = lock
        self.children: dict[tuple[object, ...], Any] = {}  # raw values -> series
        self.max_children = 10_000
        self._series: dict[tuple[str, ...], Any] = {}  # clean values -> series, in creation order
        registry.register(self)

    def child(self, *values: object) -> Any:
        found = self.children.get(values)
        if found is None:
            clean = tuple(self.guard.clean(label, value) for label, value in zip(self.labels, values, strict=True))
            with self.lock:
                found = self._series.get(clean)
                if found is None:
                    found = self._series[clean] = self._new()
            if len(self.children) < self.max_children:  # bounded: raw values may be many, clean ones few
                self.children[values] = found
        return found

    def _new(self) -> Any:
        raise NotImplementedError

    def _samples(self, series: Any) -> Iterable[tuple[str, dict[str, str], float]]:
        raise NotImplementedError

    def describe(self) -> list[Metric]:
        return [Metric(self.name, self.doc, self.kind)]

    def collect(self) -> list[Metric]:
        metric = Metric(self.name, self.doc, self.kind)
        with self.lock:
            series = list(self._series.items())
        for values, one in series:
            pairs = list(zip(self.labels, values))
            for suffix, labels, value in self._samples(one):
                metric.add_sample(self.name + suffix, dict(pairs + list(labels.items())), value, None, None)
        return [metric]


def _remember(cache: dict[tuple[object, ...], Any], key: tuple[object, ...], value: Any) -> Any:
    if len(cache) < 10_000:  # bounded: raw values may be many
        cache[key] = value
    return value


def _use_created() -> bool:
    """Whether prometheus_client exposes `_created` series now (its env var, or
    `disable_created_metrics()`): read at scrape time, as its own metrics do."""
    return bool(getattr(prometheus_metrics, "_use_created", True))


class _CounterSeries:
    __slots__ = ("created", "lock", "value")

    def __init__(self, lock: threading.Lock) -> None:
        self.value = 0.0
        self.created = time.time()
        self.lock = lock

    def inc(self, amount: float = 1) -> None:
        with self.lock:
            self.add(amount)

    def add(self, amount: float) -> None:
        """`inc` for a caller holding the lock."""
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class _Counter(_Family):
    kind = "counter"

    def _new(self) -> _CounterSeries:
        return _CounterSeries(self.lock)

    def _samples(self, series: _CounterSeries) -> Iterable[tuple[str, dict[str, str], float]]:
        yield "_total", {}, series.value
        if _use_created():
            yield "_created", {}, series.created


class _GaugeSeries:
    __slots__ = ("lock", "value")

    def __init__(self, lock: threading.Lock) -> None:
        self.value = 0.0
        self.lock = lock

    def inc(self, amount: float = 1) -> None:
        with self.lock:
            self.value += amount

    def dec(self, amount: float = 1) -> None:
        with self.lock:
            self.value += -amount

    def set(self, value: float) -> None:
        with self.lock:
            self.value = float(value)


class _Gauge(_Family):
    kind = "gauge"

    def _new(self) -> _GaugeSeries:
        return _GaugeSeries(self.lock)

    def _samples(self, series: _GaugeSeries) -> Iterable[tuple[str, dict[str, str], float]]:
        yield "", {}, series.value


class _HistogramSeries:
    """`counts[i]`: observations in bucket i alone (cumulated when scraped), as prometheus_client."""

    __slots__ = ("bounds", "counts", "created", "lock", "sum")

    def __init__(self, bounds: tuple[float, ...], lock: threading.Lock) -> None:
        self.sum = 0.0
        self.counts = [0.0] * len(bounds)
        self.created = time.time()
        self.bounds = bounds
        self.lock = lock

    def observe(self, amount: float) -> None:
        with self.lock:
            self.add(amount)

    def add(self, amount: float) -> None:
        """`observe` for a caller holding the lock."""
        self.sum += amount
        # The first bucket whose bound is >= amount (the last bound is +Inf); NaN fits none.
        index = bisect_left(self.bounds, amount)
        if amount <= self.bounds[index]:
            self.counts[index] += 1


class _Histogram(_Family):
    kind = "histogram"

    def __init__(self, name: str, doc: str, labels: Sequence[str], guard: LabelGuard,
                 registry: CollectorRegistry, lock: threading.Lock, *, buckets: Sequence[float]) -> None:
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds):
            raise ValueError("Buckets not in sorted order")
        if not bounds or bounds[-1] != INF:
            bounds.append(INF)
        if len(bounds) < 2:
            raise ValueError("Must have at least two buckets")
        self.bounds = tuple(bounds)
        self._le = [{"le": floatToGoString(b)} for b in bounds]
        super().__init__(name, doc, labels, guard, registry, lock)

    def _new(self) -> _HistogramSeries:
        return _HistogramSeries(self.bounds, self.lock)

    def _samples(self, series: _HistogramSeries) -> Iterable[tuple[str, dict[str, str], float]]:
        with self.lock:
            counts, total = list(series.counts), series.sum
        acc = 0.0
        for le, count in zip(self._le, counts):
            acc += count
            yield "_bucket", le, acc
        yield "_count", {}, acc
        if self.bounds[0] >= 0:
            yield "_sum", {}, total
        if _use_created():
            yield "_created", {}, series.created


class GatewayMetrics:
    """Every gateway metric, registered on `self.registry`."""

    def __init__(self, registry: CollectorRegistry | None = None, *, guard: LabelGuard | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.guard = guard or LabelGuard()
        r = self.registry

        self._lock = threading.Lock()  # every family's: one acquisition records a call's values
        # Per call shape, the series it records into: one lookup instead of one per family.
        self._request_series: dict[tuple[object, ...], tuple[_CounterSeries, _HistogramSeries]] = {}
        self._usage_series: dict[tuple[object, ...], tuple[Any, ...]] = {}

        def family(kind: type[_Family], name: str, doc: str, labels: Sequence[str], **kw: Any) -> Any:
            return kind(name, doc, labels, self.guard, r, self._lock, **kw)

        self._requests = family(_Counter, "mcp_gateway_requests_total", "MCP requests handled.",
                                ("method", "tool", "outcome"))
        self._errors = family(_Counter, "mcp_gateway_errors_total", "MCP requests that failed, by error kind.",
                              ("method", "tool", "error_kind"))
        self._request_seconds = family(_Histogram, "mcp_gateway_request_duration_seconds",
                                       "Time to handle an MCP request.", ("method", "tool", "outcome"),
                                       buckets=REQUEST_BUCKETS)
        genai = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")
        self._operation_seconds = family(_Histogram, "gen_ai_client_operation_duration_seconds",
                                         "GenAI operation duration (one provider call).",
                                         (*genai, "error_type"),
                                         buckets=OPERATION_BUCKETS)
        self._first_chunk_seconds = family(_Histogram, "gen_ai_client_operation_time_to_first_chunk_seconds",
                                           "Time from a provider request to its first streamed chunk.",
                                           genai, buckets=FIRST_CHUNK_BUCKETS)
        self._token_usage = family(_Histogram, "gen_ai_client_token_usage",
                                   "Number of input and output tokens used per provider call.",
                                   (*genai, "gen_ai_token_type"), buckets=TOKEN_BUCKETS)
        route = ("tool", "route", "gen_ai_provider_name", "gen_ai_request_model")
        self._tokens = family(_Counter, "mcp_gateway_tokens_total", "Tokens used, by tool, route and model.",
                              (*route, "gen_ai_token_type"))
        self._cost = family(_Counter, "mcp_gateway_cost_usd_total", "Estimated provider cost in US dollars.",
                            route)
        self._sessions = family(_Gauge, "mcp_gateway_active_sessions", "Sessions currently open.",
                                ("transport",))
        self._rate_limited = family(_Counter, "mcp_gateway_rate_limit_rejections_total",
                                    "Requests refused by a rate limit.", ("scope", "limit", "tool"))
        self._deprecated_calls = family(_Counter, "mcp_gateway_deprecated_calls_total",
                                        "Calls to deprecated tool versions, by caller (to reach them before the sunset).",
                                        ("tool", "version", "principal"))
        self._auth_failures = family(_Counter, "mcp_gateway_auth_failures_total",
                                     "Bearer tokens refused, by credential kind.", ("kind",))

    def allow(self, label: str, values: Iterable[str]) -> None:
        """Admit only `values` for `label` from now on (call again after a config reload)."""
        self.guard.allow(label, values)
        for fam in self._families:
            if label in fam.labels:
                fam.children.clear()
        self._request_series.clear()
        self._usage_series.clear()

    @property
    def _families(self) -> list[_Family]:
        return [v for v in vars(self).values() if isinstance(v, _Family)]

    # -- recording (hot path) --------------------------------------------------------------------

    def request(self, method: str, tool: str | None, outcome: str, seconds: float,
                error_kind: str | None = None) -> None:
        """One finished MCP request; `outcome` is "ok" or "error" (then give `error_kind`)."""
        key = (method, tool, outcome)
        series = self._request_series.get(key)
        if series is None:
            series = _remember(self._request_series, key, (self._requests.child(*key), self._request_seconds.child(*key)))
        errors = self._errors.child(method, tool, error_kind or outcome) if outcome != "ok" else None
        count, duration = series
        with self._lock:
            count.add(1)
            duration.add(seconds)
            if errors is not None:
                errors.add(1)

    def provider_call(self, provider: str, model: str | None, seconds: float, *, operation: str = "chat",
                      error_type: str | None = None) -> None:
        self._operation_seconds.child(operation, provider, model, error_type).observe(seconds)

    def first_chunk(self, provider: str, model: str | None, seconds: float, *,
                    operation: str = "chat") -> None:
        self._first_chunk_seconds.child(operation, provider, model).observe(seconds)

    def usage(self, *, tool: str | None, route: str | None, provider: str, model: str | None,
              input_tokens: int = 0, output_tokens: int = 0, cached_tokens: int = 0,
              cost_usd: float | None = None, operation: str = "chat") -> None:
        """Tokens and cost of one provider call (one histogram sample per token type, as OTel says)."""
        if input_tokens < 0 or output_tokens < 0 or cached_tokens < 0 or (cost_usd is not None and cost_usd < 0):
            # refused below, part-way through, as prometheus_client's counters refuse them
            self._usage_one_by_one(tool, route, provider, model, input_tokens, output_tokens, cached_tokens,
                                   cost_usd, operation)
            return
        # The counters of a zero amount are left alone (a series is exposed from its first use on).
        key = (tool, route, provider, model, operation, not input_tokens, not output_tokens, not cached_tokens,
               not cost_usd)
        series = self._usage_series.get(key)
        if series is None:
            series = _remember(self._usage_series, key, self._usage_group(key))
        input_hist, output_hist, input_count, output_count, cached_count, cost = series
        with self._lock:
            input_hist.add(input_tokens)
            output_hist.add(output_tokens)
            if input_count is not None:
                input_count.add(input_tokens)
            if output_count is not None:
                output_count.add(output_tokens)
            if cached_count is not None:
                cached_count.add(cached_tokens)
            if cost is not None:
                cost.add(cost_usd)

    def _usage_group(self, key: tuple[Any, ...]) -> tuple[Any, ...]:
        tool, route, provider, model, operation, no_input, no_output, no_cached, no_cost = key
        return (self._token_usage.child(operation, provider, model, "input"),
                self._token_usage.child(operation, provider, model, "output"),
                None if no_input else self._tokens.child(tool, route, provider, model, "input"),
                None if no_output else self._tokens.child(tool, route, provider, model, "output"),
                None if no_cached else self._tokens.child(tool, route, provider, model, "cached"),
                None if no_cost else self._cost.child(tool, route, provider, model))

    def _usage_one_by_one(self, tool: str | None, route: str | None, provider: str, model: str | None,
                          input_tokens: int, output_tokens: int, cached_tokens: int, cost_usd: float | None,
                          operation: str) -> None:
        self._token_usage.child(operation, provider, model, "input").observe(input_tokens)
        self._token_usage.child(operation, provider, model, "output").observe(output_tokens)
        for kind, count in (("input", input_tokens), ("output", output_tokens), ("cached", cached_tokens)):
            if count:
                self._tokens.child(tool, route, provider, model, kind).inc(count)
        if cost_usd:
            self._cost.child(tool, route, provider, model).inc(cost_usd)

    def session_opened(self, transport: str = "http") -> None:
        self._sessions.child(transport).inc()

    def session_closed(self, transport: str = "http") -> None:
        self._sessions.child(transport).dec()

    def set_active_sessions(self, count: int, transport: str = "http") -> None:
        self._sessions.child(transport).set(count)

    def rate_limited(self, scope: str, limit: str, tool: str | None = None) -> None:
        self._rate_limited.child(scope, limit, tool).inc()

    def deprecated_call(self, tool: str, version: str, principal: str | None) -> None:
        self._deprecated_calls.child(tool, version, principal).inc()

    def auth_failed(self, kind: str) -> None:
        self._auth_failures.child(kind).inc()

    # -- exposition ------------------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The registry in the text format the `Accept` header asks for (Prometheus or OpenMetrics)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def metrics_endpoint(metrics: GatewayMetrics) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint serving `metrics`: `Route("/metrics", metrics_endpoint(m), methods=["GET"])`."""

    async def endpoint(request: Request) -> Response:
        body, content_type = metrics.render(request.headers.get("accept"))
        return Response(body, media_type=None, headers={"content-type": content_type})

    return endpoint
