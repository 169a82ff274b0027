"""The one error boundary: every error class has its MCP form and HTTP status, the tree in
`_errors.py` names every subclass, and call metadata on an error reaches both surfaces."""

from __future__ import annotations

import importlib
import pkgutil

import mcp_types as types
import pytest
from mcp import MCPError

import mcp_gateway
from mcp_gateway._errors import (
    ArgumentError,
    GatewayError,
    ProviderError,
    ShuttingDownError,
    ToolRetiredError,
    Violation,
)
from mcp_gateway.accounting import BudgetExceededError
from mcp_gateway.security import CallDeadlineError, RateLimitExceeded, RequestLimitError
from mcp_gateway.server._boundary import error_mapping, mcp_tool_error, problem


def _all_subclasses() -> set[type[GatewayError]]:
    for module in pkgutil.walk_packages(mcp_gateway.__path__, "mcp_gateway."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: set[type[GatewayError]] = set()
    todo = [GatewayError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("mcp_gateway.") and sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_the_tree_in_errors_py_names_every_subclass():
    tree = mcp_gateway._errors.__doc__ or ""
    missing = sorted(cls.__name__ for cls in _all_subclasses() if f" {cls.__name__} " not in tree)
    assert not missing, f"add to the tree in mcp_gateway/_errors.py: {missing}"


def test_every_server_side_error_has_a_specific_status():
    generic = {cls.__name__ for cls in _all_subclasses()
               if error_mapping(cls.__new__(cls)).slug in ("gateway-error", "internal-error")}
    # Only errors a server never raises (the client library's, `diff --against`'s Git reader) fall
    # back to the root's row.
    assert generic <= {"ClientError", "ConnectError", "RemoteError", "ClientTimeoutError", "GitError"}, generic


@pytest.mark.parametrize(("error", "status", "slug"), [
    (ToolRetiredError("Tool 'x' is retired"), 410, "tool-retired"),
    (ArgumentError("t", [Violation("$.n", "too big")]), 400, "invalid-arguments"),
    (CallDeadlineError("call_deadline_s", "late"), 504, "deadline-exceeded"),
    (RequestLimitError("max_argument_chars", "big"), 413, "request-too-large"),
    (BudgetExceededError("no money", scope="tool 't'"), 402, "budget-exceeded"),
    (ProviderError("openai", "HTTP 500", kind="server"), 502, "provider-failed"),
    (ShuttingDownError("shutting down"), 503, "shutting-down"),
])
def test_status_and_problem_type_follow_the_class(error, status, slug):
    code, body, _ = problem(error)
    assert code == body["status"] == status and body["type"].endswith(":" + slug)
    assert body["detail"] == str(error)


def test_a_rate_limit_says_when_to_retry_on_both_surfaces():
    error = RateLimitExceeded("key", "requests_per_minute", 5, 2.2, "key:abc")
    status, body, headers = problem(error)
    assert status == 429 and headers == {"Retry-After": "3"} and body["retry_after_s"] == 2.2
    result = mcp_tool_error(error)
    assert result.is_error and result.meta == {"mcp-gateway/retry_after_s": 2.2}


def test_call_metadata_on_an_error_passes_through():
    error = ProviderError("anthropic", "HTTP 529 overloaded", kind="overloaded")
    error.call_meta = {"route": "main", "attempts": 2,  # type: ignore[attr-defined]
                       "other_attempts": [{"target": "a/m", "outcome": "overloaded"}]}
    result = mcp_tool_error(error)
    assert result.meta == {"mcp-gateway/call": error.call_meta}  # type: ignore[attr-defined]
    _, body, _ = problem(error)
    assert body["call"]["attempts"] == 2 and body["provider"] == "anthropic" and body["kind"] == "overloaded"


def test_protocol_errors_stay_protocol_errors_and_bugs_reveal_nothing():
    with pytest.raises(MCPError) as info:
        mcp_tool_error(ToolRetiredError("Tool 'x' is retired"))
    assert info.value.error.code == types.INVALID_PARAMS
    status, body, _ = problem(RuntimeError("/srv/secret/path failed"))
    assert status == 500 and "secret" not in body["detail"]
    with pytest.raises(MCPError) as bug:
        mcp_tool_error(KeyError("sk-live-123"))
    assert bug.value.error.code == types.INTERNAL_ERROR and "sk-live" not in bug.value.error.message
