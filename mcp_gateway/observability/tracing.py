"""OpenTelemetry spans around tool calls (API only, no SDK needed).

Without a configured tracer provider every span is OpenTelemetry's non-recording span: the cost is
a few attribute-free calls. A deployment that installs the OTel SDK and sets a provider (globally,
or passed here) gets one span per tool call, from every surface (the call pipeline opens it), with
the GenAI semantic-convention attributes; over MCP it nests in the SDK's own request span:

    execute_tool {tool}     INTERNAL  gen_ai.operation.name=execute_tool, gen_ai.tool.name, mcp.method.name,
                                      gen_ai.usage.input_tokens / output_tokens, gen_ai.response.model

A span that ends by an exception gets `error.type` (the ProviderError kind when there is one, else
the exception class name) and ERROR status. Principals, arguments and prompts are never attributes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from opentelemetry import trace
from opentelemetry.environment_variables import OTEL_PYTHON_TRACER_PROVIDER
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

__all__ = ["TRACER_NAME", "GatewayTracer"]

TRACER_NAME = "mcp_gateway"
_NO_OP_PROVIDERS = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def _error_type(exc: BaseException) -> str:
    kind = getattr(exc, "kind", None)
    return kind if isinstance(kind, str) and kind else type(exc).__name__


class GatewayTracer:
    """Span factories for the gateway; `tracer_provider=None` follows the global provider."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._provider = tracer_provider
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)
        # `get_tracer_provider()` reads os.environ on every call while no global provider is set
        # (most of a call's tracing cost): look at the environment once, the global per call.
        self._provider_from_env = OTEL_PYTHON_TRACER_PROVIDER in os.environ

    def active(self) -> bool:
        """False while no provider is set (asked per call: one may be set later): then every span
        is a no-op, and a caller may skip opening one, which is most of the cost of tracing."""
        provider = self._provider
        if provider is None:
            # OpenTelemetry's private global (absent in some version: then the public call decides).
            if getattr(trace, "_TRACER_PROVIDER", trace) is None and not self._provider_from_env:
                return False
            provider = trace.get_tracer_provider()
        return not isinstance(provider, _NO_OP_PROVIDERS)

    @contextmanager
    def _span(self, name: str, kind: SpanKind, attributes: dict[str, str | int]) -> Iterator[Span]:
        with self._tracer.start_as_current_span(
                name, kind=kind, attributes=attributes, record_exception=False,
                set_status_on_exception=False) as span:
            try:
                yield span
            except BaseException as exc:
                if span.is_recording():
                    span.set_attribute("error.type", _error_type(exc))
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    if isinstance(exc, Exception):
                        span.record_exception(exc, escaped=True)
                raise

    def tool_call(self, tool: str, *, method: str = "tools/call") -> AbstractContextManager[Span]:
        if not self.active():
            return nullcontext(trace.get_current_span())  # what a no-op tracer's span would be
        return self._span(f"execute_tool {tool}", SpanKind.INTERNAL,
                          {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool,
                           "mcp.method.name": method})

    @staticmethod
    def record_usage(span: Span, *, input_tokens: int | None = None, output_tokens: int | None = None,
                     response_model: str | None = None) -> None:
        if not span.is_recording():
            return
        if input_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        if output_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        if response_model:
            span.set_attribute("gen_ai.response.model", response_model)
