"""Tracing: no-op without a provider; GenAI attributes and error.type with one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry.trace import NonRecordingSpan, SpanKind, StatusCode

from mcp_gateway._errors import ProviderError
from mcp_gateway.observability.tracing import GatewayTracer


class FakeSpan:
    def __init__(self, name: str, kind: SpanKind, attributes: dict[str, Any]) -> None:
        self.name, self.kind, self.attributes = name, kind, dict(attributes)
        self.status: Any = None
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.exceptions: list[BaseException] = []

    def is_recording(self) -> bool:
        return True

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def set_status(self, status: Any) -> None:
        self.status = status

    def record_exception(self, exc: BaseException, escaped: bool = False) -> None:
        self.exceptions.append(exc)

    def add_event(self, name: str, attributes: dict[str, Any]) -> None:
        self.events.append((name, attributes))


class FakeTracer:
    def __init__(self) -> None:
        self.spans: list[FakeSpan] = []

    @contextmanager
    def start_as_current_span(self, name: str, kind: SpanKind, attributes: dict[str, Any],
                              **_: Any) -> Iterator[FakeSpan]:
        span = FakeSpan(name, kind, attributes)
        self.spans.append(span)
        yield span


class FakeProvider:
    def __init__(self) -> None:
        self.tracer = FakeTracer()

    def get_tracer(self, *args: Any, **kwargs: Any) -> FakeTracer:
        return self.tracer


def test_without_a_provider_spans_are_no_ops() -> None:
    tracer = GatewayTracer()
    with tracer.tool_call("summarize") as span:
        assert isinstance(span, NonRecordingSpan) and not span.is_recording()
        GatewayTracer.record_usage(span, input_tokens=1, output_tokens=2)
    with pytest.raises(RuntimeError), tracer.tool_call("summarize"):
        raise RuntimeError("x")


def test_spans_carry_genai_attributes_and_errors() -> None:
    provider = FakeProvider()
    tracer = GatewayTracer(provider)  # type: ignore[arg-type]
    with pytest.raises(ProviderError), tracer.tool_call("classify"):
        raise ProviderError("anthropic", "slow down", kind="rate_limit")
    with tracer.tool_call("summarize") as span:
        GatewayTracer.record_usage(span, input_tokens=100, output_tokens=7, response_model="gpt-4o-2024")
    failed, ok = provider.tracer.spans
    assert failed.name == "execute_tool classify" and failed.kind == SpanKind.INTERNAL
    assert failed.attributes["error.type"] == "rate_limit" and failed.status.status_code == StatusCode.ERROR
    assert ok.name == "execute_tool summarize" and ok.attributes == {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "summarize", "mcp.method.name": "tools/call",
        "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 7, "gen_ai.response.model": "gpt-4o-2024"}
    assert ok.status is None
