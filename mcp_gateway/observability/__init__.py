"""Observability building blocks: Prometheus metrics, JSON logs with request ids, the audit log and
OpenTelemetry spans. Each module has one job; the server wires them together."""

from .audit import AuditEvent, AuditLog, JsonlAuditSink, SqliteAuditSink
from .logs import JsonFormatter, RequestIdMiddleware, json_log_handler, request_id, request_id_var
from .metrics import GatewayMetrics, LabelGuard, metrics_endpoint
from .tracing import GatewayTracer

__all__ = [
    "AuditEvent",
    "AuditLog",
    "GatewayMetrics",
    "GatewayTracer",
    "JsonFormatter",
    "JsonlAuditSink",
    "LabelGuard",
    "RequestIdMiddleware",
    "SqliteAuditSink",
    "json_log_handler",
    "metrics_endpoint",
    "request_id",
    "request_id_var",
]
