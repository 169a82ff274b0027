"""The one error boundary: how each gateway error reaches a caller, on every surface.

One table maps an error class to its HTTP status and problem type, and to its MCP form (a tool
result with `isError: true`, or a JSON-RPC error code for what the protocol treats as a bad
request). Lookup walks the exception's class hierarchy, so a subclass without a row of its own
(a provider's own error type, say) is answered like its parent. Surfaces render from here:
`problem()` for HTTP (RFC 9457 problem details), `mcp_tool_error()` / `mcp_request_error()` for MCP.

Call metadata an error carries (`call_meta`: route, attempts, causes) passes through to both: the
`call` member of a problem, `_meta["mcp-gateway/call"]` of an MCP error result.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from .._errors import (
    ArgumentError,
    ClientInputRequired,
    ConfigError,
    GatewayError,
    ModelNotFoundError,
    OutputError,
    ProviderError,
    RenderError,
    ShuttingDownError,
    ToolNotFoundError,
    ToolRetiredError,
)
from .._protocol import META_PREFIX
from ..accounting import BudgetExceededError, BudgetUnavailableError
from ..catalog import PromptNotFoundError, ResourceNotFoundError
from ..security import (
    CallDeadlineError,
    JWTError,
    KeyStoreError,
    RateLimitExceeded,
    RateLimitUnavailable,
    RequestLimitError,
)
from ..security.ratelimit import retry_after_header
from ..sessions import SessionError, SessionStoreError
from ._deprecation import retired_headers

__all__ = ["CALL_META_KEY", "PROBLEM_TYPE_PREFIX", "TOOL_META_KEY", "ErrorMapping", "error_mapping", "mcp_request_error", "mcp_tool_error",
           "problem", "problem_types"]

PROBLEM_TYPE_PREFIX = "urn:mcp-gateway:problem:"
CALL_META_KEY = f"{META_PREFIX}call"
TOOL_META_KEY = f"{META_PREFIX}tool"  # the tool version that answered: name, version, status, deprecation


@dataclass(frozen=True, slots=True)
class ErrorMapping:
    """How one error class is answered. `rpc_code` None means an MCP tool error result."""

    status: int
    slug: str
    title: str
    rpc_code: int | None = None

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug


# Most specific first only for readability: lookup follows the exception's MRO, not this order.
_TABLE: dict[type[BaseException], ErrorMapping] = {
    ToolRetiredError: ErrorMapping(410, "tool-retired", "Tool retired", types.INVALID_PARAMS),
    ToolNotFoundError: ErrorMapping(404, "tool-not-found", "Unknown tool", types.INVALID_PARAMS),
    ModelNotFoundError: ErrorMapping(404, "model-not-found", "Unknown model", types.INVALID_PARAMS),
    PromptNotFoundError: ErrorMapping(404, "prompt-not-found", "Unknown prompt", types.INVALID_PARAMS),
    ResourceNotFoundError: ErrorMapping(404, "resource-not-found", "Unknown resource", types.INVALID_PARAMS),
    ArgumentError: ErrorMapping(400, "invalid-arguments", "Invalid arguments"),
    RenderError: ErrorMapping(400, "render-failed", "Prompt could not be rendered"),
    CallDeadlineError: ErrorMapping(504, "deadline-exceeded", "Call deadline exceeded"),
    RequestLimitError: ErrorMapping(413, "request-too-large", "Request too large"),
    RateLimitExceeded: ErrorMapping(429, "rate-limited", "Rate limit exceeded"),
    RateLimitUnavailable: ErrorMapping(503, "rate-limit-unavailable", "Rate limits cannot be checked"),
    # 402, not 429: a budget is spent money, not a burst; clients (the openai SDK among them)
    # retry 429 on their own, which would only hit the same empty budget again.
    BudgetUnavailableError: ErrorMapping(503, "budget-unavailable", "Budgets cannot be checked"),
    BudgetExceededError: ErrorMapping(402, "budget-exceeded", "Budget exceeded"),
    SessionError: ErrorMapping(404, "session-not-found", "Unknown session"),
    SessionStoreError: ErrorMapping(503, "session-store-unavailable", "Session store unavailable"),  # says `public`
    OutputError: ErrorMapping(502, "invalid-model-output", "Model answer does not match the output schema"),
    ProviderError: ErrorMapping(502, "provider-failed", "Provider failed"),
    ClientInputRequired: ErrorMapping(502, "client-input-required", "The call needs an MCP client's input"),
    ShuttingDownError: ErrorMapping(503, "shutting-down", "The gateway is shutting down"),
    JWTError: ErrorMapping(401, "unauthorized", "Invalid credentials", types.INVALID_REQUEST),
    KeyStoreError: ErrorMapping(503, "key-store-unavailable", "Key store unavailable", types.INTERNAL_ERROR),
    ConfigError: ErrorMapping(500, "config-error", "Configuration error", types.INTERNAL_ERROR),
    GatewayError: ErrorMapping(500, "gateway-error", "Gateway error", types.INTERNAL_ERROR),
}
_UNEXPECTED = ErrorMapping(500, "internal-error", "Internal error", types.INTERNAL_ERROR)


def error_mapping(exc: BaseException) -> ErrorMapping:
    for cls in type(exc).__mro__:
        found = _TABLE.get(cls)
        if found is not None:
            return found
    return _UNEXPECTED


def problem_types() -> dict[int, list[ErrorMapping]]:
    """Every mapping by HTTP status, for documenting the error responses (OpenAPI)."""
    by_status: dict[int, list[ErrorMapping]] = {}
    for mapping in (*_TABLE.values(), _UNEXPECTED):
        by_status.setdefault(mapping.status, []).append(mapping)
    return by_status


def _call_meta(exc: BaseException) -> dict[str, Any] | None:
    meta = getattr(exc, "call_meta", None)
    return dict(meta) if isinstance(meta, Mapping) else None


def _detail(exc: BaseException) -> str:
    # Only our own errors have messages written for callers; anything else is a bug, and its text
    # (which may hold paths, values, or a secret) stays in the server's log.
    # An error that names internals for operators (a store's address) says `public` to callers.
    if not isinstance(exc, GatewayError):
        return "the gateway failed to handle this request"
    public = getattr(exc, "public", None)
    return public if isinstance(public, str) else str(exc)


def problem(exc: BaseException, *, redact: Callable[[str], str] = str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """RFC 9457 problem details for `exc`: (status, body, extra headers)."""
    mapping = error_mapping(exc)
    body: dict[str, Any] = {"type": mapping.type, "title": mapping.title, "status": mapping.status,
                            "detail": redact(_detail(exc))}
    headers: dict[str, str] = {}
    if isinstance(exc, ArgumentError | OutputError):
        body["errors"] = [{"path": v.path, "message": redact(v.message)} for v in exc.violations]
    if isinstance(exc, RateLimitExceeded):
        headers["Retry-After"] = retry_after_header(exc)
        body["retry_after_s"] = round(exc.retry_after, 3)
    if isinstance(exc, ProviderError):
        body["provider"] = exc.provider
        body["kind"] = exc.kind
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    if isinstance(exc, RequestLimitError):
        body["limit"] = exc.limit
    if isinstance(exc, BudgetExceededError):
        body["budget"] = exc.scope
    if isinstance(exc, ToolRetiredError):
        headers.update(retired_headers(exc.successor, exc.sunset))
        if exc.successor:
            body["successor"] = exc.successor
    meta = _call_meta(exc)
    if meta is not None:
        body["call"] = meta
    return mapping.status, body, headers


def mcp_tool_error(exc: BaseException) -> types.CallToolResult:
    """The answer to a failed tools/call: an error result, or raises MCPError for a bad request."""
    mapping = error_mapping(exc)
    if mapping.rpc_code is not None:
        raise MCPError(mapping.rpc_code, _detail(exc)) from None
    meta: dict[str, Any] = {}
    text = _detail(exc)
    if isinstance(exc, RateLimitExceeded):
        text = f"Rate limit exceeded: {exc}; retry after {exc.retry_after:.1f} s"
        meta[f"{META_PREFIX}retry_after_s"] = round(exc.retry_after, 3)
    elif isinstance(exc, RateLimitUnavailable):
        text = f"Rate limits cannot be checked right now: {exc}"
    call_meta = _call_meta(exc)
    if call_meta is not None:
        meta[CALL_META_KEY] = call_meta
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True,
                                meta=meta or None)


def mcp_request_error(exc: BaseException) -> MCPError:
    """A failed prompts/get, resources/read, ...: these have no error result, only JSON-RPC errors."""
    mapping = error_mapping(exc)
    return MCPError(mapping.rpc_code or types.INVALID_PARAMS, _detail(exc))
