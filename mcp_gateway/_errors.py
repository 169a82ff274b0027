"""The exception tree of mcp-gateway (every subclass, wherever it is defined).

    GatewayError
    ├── ConfigError              a config file set that cannot be served (carries every issue found)
    ├── ToolNotFoundError        a tool name that is not served (unknown, draft, or outside the caller's scopes)
    │   └── ToolRetiredError     a tool that was served once and is retired now
    ├── ModelNotFoundError       a model alias that is not served (unknown, unavailable, or outside the scopes)
    ├── PromptNotFoundError      catalog: a prompt name that is not served
    ├── ResourceNotFoundError    catalog: a resource URI that is not served
    ├── ArgumentError            tool arguments that fail the tool's input schema (carries every violation)
    │   └── ChatRequestError     server._chat_format: a chat-completions body OpenAI would refuse (names the param)
    ├── RenderError              a template that failed or grew past the size cap while rendering
    ├── RequestLimitError        security.limits: a request over a size or count limit
    │   └── CallDeadlineError    the call did not finish within its deadline
    ├── RateLimitExceeded        security.ratelimit: over a rate limit (carries retry_after)
    ├── RateLimitUnavailable     security.ratelimit: the limiter's store cannot be reached
    ├── JWTError                 security.jwt: a token that cannot be verified
    ├── KeyStoreError            security.keys: the API key file cannot be read or written
    ├── BudgetExceededError      accounting: a call whose worst-case cost does not fit a budget
    │   └── BudgetUnavailableError  a budget that cannot be checked (the cluster's Redis is down)
    ├── SessionError             sessions: a handle that is unknown, ended, expired or another's
    ├── SessionStoreError        sessions: the session store failed or is unreachable
    ├── ProviderError            a model provider that failed (names the provider, never a secret)
    │   └── RouteError           routing: a routed call that failed, with every attempt made
    ├── OutputError              a model answer that does not match the tool's output schema
    ├── ClientInputRequired      the call needs the MCP client's input first (2026-07-28 sampling)
    ├── ShuttingDownError        server: a call cut short because the gateway is shutting down
    ├── GitError                 lifecycle: git could not give a config as it was at a ref (`diff --against`)
    └── ClientError              raised by mcp_gateway.client
        ├── ConnectError         the server could not be reached or started
        │   └── HttpStatusError  an HTTP server refused with 401, 403 or 404 (carries the status)
        ├── RemoteError          the server answered with a protocol error
        └── ClientTimeoutError   the server did not answer in time

Foreign errors (Jinja, jsonschema, httpx2, the mcp SDK) are translated into these at the one
place that talks to each foreign library. How each one reaches a caller (MCP result or JSON-RPC
error, HTTP status and problem type) is one table: `mcp_gateway.server._boundary`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .providers import Usage

__all__ = [
    "ArgumentError",
    "ClientError",
    "ClientInputRequired",
    "ShuttingDownError",
    "ConfigError",
    "ConfigIssue",
    "GatewayError",
    "OutputError",
    "ProviderError",
    "RenderError",
    "ModelNotFoundError",
    "ToolNotFoundError",
    "ToolRetiredError",
    "Violation",
]


class GatewayError(Exception):
    """Base of every error mcp-gateway raises on purpose.

    `call_meta` is set on an error raised after the call was routed (a provider failure, a refused
    budget, an answer that failed its output schema): the routing facts as JSON, shaped like a
    successful result's `_meta["mcp-gateway/call"]` plus `error`, for the client and the audit log.
    """

    call_meta: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file, located as precisely as the loader can."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(GatewayError):
    """The configuration cannot be served; `issues` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, i.column, i.message))
        count = len(self.issues)
        head = f"{count} error{'s' if count != 1 else ''} in the configuration"
        super().__init__("\n".join([head, *(f"  {issue}" for issue in self.issues)]))


class ToolNotFoundError(GatewayError):
    """A tool name that this gateway does not serve."""


class ToolRetiredError(ToolNotFoundError):
    """A tool that this gateway served once and has retired (HTTP says 410 Gone, not 404).

    `successor` names what to call instead (a tool name, possibly pinned: `summarize.v2`), and
    `sunset` (a date) when it was retired, when the config says."""

    def __init__(self, message: str, *, successor: str | None = None, sunset: Any = None) -> None:
        super().__init__(message)
        self.successor = successor
        self.sunset = sunset


class ModelNotFoundError(GatewayError):
    """A model (alias, or `provider/model`) the OpenAI-format API does not serve to this caller."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a value fails a JSON Schema; `path` is a JSON path such as `$.items[0].name`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ArgumentError(GatewayError):
    """Tool arguments that fail the input schema; `violations` lists all of them."""

    def __init__(self, tool: str, violations: list[Violation]) -> None:
        self.tool = tool
        self.violations = violations
        lines = [f"Invalid arguments for tool '{tool}':", *(f"- {v}" for v in violations)]
        super().__init__("\n".join(lines))


class RenderError(GatewayError):
    """A prompt template could not be rendered with the given arguments."""


class ProviderError(GatewayError):
    """A model provider failed. The message names the provider and the cause, never a secret.

    `kind` classifies the failure for routing: rate_limit, quota, auth, bad_request, not_found,
    server, overloaded, timeout (connect, first-token, idle or total deadline, stalls included),
    connect, stream (died mid-way or ended without its end marker), malformed (a body that does
    not parse), content_filter, empty (a success with no content: no text, no structured value),
    circuit_open (every target's breaker is open), or other. `retryable` says whether the same
    request may succeed if sent again; `retry_after` is the provider's requested wait in seconds,
    if any. `output_started` is true once any answer text reached the caller (no failover after
    that). `usage` is the provider's token count (a `providers.Usage`) when the failed answer
    reported one, so the attempt can still be costed.
    """

    def __init__(
        self,
        provider: str,
        cause: str,
        *,
        kind: str = "other",
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
        output_started: bool = False,
        usage: Usage | None = None,
    ) -> None:
        self.provider = provider
        self.cause = cause
        self.kind = kind
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.output_started = output_started
        self.usage = usage
        super().__init__(f"provider '{provider}' failed: {cause}")


class OutputError(GatewayError):
    """The model's answer does not satisfy the tool's output schema."""

    def __init__(self, tool: str, violations: list[Violation]) -> None:
        self.tool = tool
        self.violations = violations
        lines = [f"The model's answer for tool '{tool}' does not match its output schema:"]
        lines += [f"- {v}" for v in violations]
        super().__init__("\n".join(lines))


class ShuttingDownError(GatewayError):
    """A call still running at the end of the shutdown grace period, cancelled; retrying it on
    another process (or after the restart) is safe to try."""


class ClientInputRequired(GatewayError):
    """The call cannot finish until the MCP client answers `requests` (keyed, protocol objects).

    In the 2026-07-28 protocol a server cannot send requests to the client; it answers the call
    with these requests instead, and the client retries the call with its responses."""

    def __init__(self, requests: dict[str, object]) -> None:
        self.requests = requests
        super().__init__(f"waiting for the client to answer: {', '.join(requests)}")


class ClientError(GatewayError):
    """Base of the errors raised by `mcp_gateway.client`."""
