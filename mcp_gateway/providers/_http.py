"""Shared plumbing of the native HTTP adapters: client, timeouts, framing, and the error boundary.

Every adapter (`openai`, `anthropic`, `gemini`, `ollama`) subclasses `HttpProvider` and supplies
only its wire format: the URL, the request body, how to read a whole response, and a stream
decoder. Everything else lives here, once:

* one pooled `httpx2.AsyncClient` per provider instance, created on first use, closed by `aclose`;
* timeouts: `connect_timeout_s`, `first_token_timeout_s` (request sent -> first byte of the answer:
  a streamed call's first piece of answer, a whole call's response, which comes when the answer is
  ready), `idle_timeout_s` (longest silence once a streamed answer has started) and
  `total_timeout_s` (the whole call, streamed or not);
* framing: Server-Sent Events or newline-delimited JSON, split on bytes (a raw U+2028 inside a
  JSON string is not a line break, unlike `str.splitlines`);
* the one place where HTTP statuses, transport failures, malformed bodies and dead streams become
  `ProviderError`, with the API key (and any secret-looking header value) scrubbed from the cause.

Cancellation: the request runs inside `async with client.stream(...)`, so an anyio cancel closes
the upstream response (and its connection) at once.

Settings every HTTP kind accepts (all optional):

    connect_timeout_s          5       seconds to establish a connection
    first_token_timeout_s      120     seconds from sending to the first byte of the answer (streamed:
                                       the first piece of text; whole: the response, i.e. the answer)
    idle_timeout_s             30      streaming: longest gap once the answer has started
    total_timeout_s            300     seconds for the whole call (the default call deadline too)

The SDKs' 600 s default total let a hung provider hold a call (and a connection) for ten minutes;
these bound a silent provider at two minutes and a stalled stream at 30 s. A whole answer longer
than ~120 s to generate needs a larger `first_token_timeout_s`, or streaming.
    max_connections            1000    connection pool size
    max_keepalive_connections  = max_connections          idle connections kept open
    keepalive_expiry_s         30      how long an idle connection is kept
    trust_env                  true    honour HTTP(S)_PROXY / NO_PROXY / SSL_CERT_FILE
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import json
import logging
import math
import os
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import anyio
import httpx2

from .._errors import ProviderError
from ._base import Completion, CompletionRequest, OnText, ToolCall, Usage

__all__ = [
    "FINISH_REASONS",
    "HttpOptions",
    "HttpProvider",
    "SettingsReader",
    "StreamDecoder",
    "WireError",
    "error_from_status",
    "parse_duration",
    "parse_retry_after",
]

logger = logging.getLogger("mcp_gateway.providers")

FINISH_REASONS = frozenset({"stop", "length", "content_filter", "tool_calls", "other"})
"""The normalised finish reasons every adapter reports."""

CAUSE_LIMIT = 300
"""Provider-supplied text in an error cause is trimmed to about this many characters."""

_ERROR_BODY_LIMIT = 64 * 1024
_MAX_LINE = 16 * 1024 * 1024
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|password|signature", re.IGNORECASE)
_QUOTA_TEXT = re.compile(
    r"quota|usage limit|billing|credit balance|insufficient (?:funds|balance|credits)", re.IGNORECASE
)
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "quota_exceeded", "billing_error"})
_T = TypeVar("_T")


class WireError(Exception):
    """A failure found while talking to a provider; `HttpProvider` turns it into `ProviderError`."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.usage = usage


# --------------------------------------------------------------------------- settings


class SettingsReader:
    """Reads and checks kind-specific settings; an unknown name is an error, listing the known ones.

    Messages name the setting and the expected type, never the value (it may be a secret).
    """

    def __init__(self, kind: str, settings: Mapping[str, Any], known: Iterable[str]) -> None:
        self.kind = kind
        self._settings = dict(settings or {})
        known = set(known)
        if unknown := set(self._settings) - known:
            raise ValueError(
                f"unknown setting(s) {', '.join(sorted(unknown))} for kind '{kind}' "
                f"(known: {', '.join(sorted(known))})"
            )

    def number(self, key: str, default: float | None, *, minimum: float = 0.0) -> float | None:
        value = self._settings.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"setting '{key}' must be a number")
        if value <= minimum:
            raise ValueError(f"setting '{key}' must be greater than {minimum:g}")
        return float(value)

    def integer(self, key: str, default: int | None, *, minimum: int = 1) -> int | None:
        value = self._settings.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"setting '{key}' must be an integer")
        if value < minimum:
            raise ValueError(f"setting '{key}' must be at least {minimum}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._settings.get(key, default)
        if not isinstance(value, bool):
            raise ValueError(f"setting '{key}' must be true or false")
        return value

    def choice(self, key: str, default: str, choices: Iterable[str]) -> str:
        value = self._settings.get(key, default)
        options = tuple(choices)
        if value not in options:
            raise ValueError(f"setting '{key}' must be one of: {', '.join(options)}")
        return str(value)

    def string(self, key: str, default: str | None) -> str | None:
        value = self._settings.get(key, default)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"setting '{key}' must be a non-empty string")
        return value

    def raw(self, key: str, default: Any = None) -> Any:
        return self._settings.get(key, default)


HTTP_SETTINGS = frozenset(
    {
        "connect_timeout_s",
        "first_token_timeout_s",
        "idle_timeout_s",
        "total_timeout_s",
        "max_connections",
        "max_keepalive_connections",
        "keepalive_expiry_s",
        "trust_env",
    }
)


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """Connection and timeout settings shared by every HTTP kind (see the module docstring)."""

    connect_timeout: float = 5.0
    first_token_timeout: float = 120.0
    idle_timeout: float = 30.0
    total_timeout: float = 300.0
    max_connections: int = 1000
    max_keepalive_connections: int = 1000
    keepalive_expiry: float = 30.0
    trust_env: bool = True

    @classmethod
    def read(cls, reader: SettingsReader) -> HttpOptions:
        default = cls()
        max_connections = reader.integer("max_connections", 1000)
        assert max_connections is not None
        return cls(
            connect_timeout=reader.number("connect_timeout_s", default.connect_timeout) or default.connect_timeout,
            first_token_timeout=reader.number("first_token_timeout_s", default.first_token_timeout)
            or default.first_token_timeout,
            idle_timeout=reader.number("idle_timeout_s", default.idle_timeout) or default.idle_timeout,
            total_timeout=reader.number("total_timeout_s", default.total_timeout) or default.total_timeout,
            max_connections=max_connections,
            max_keepalive_connections=reader.integer("max_keepalive_connections", max_connections, minimum=0)
            or 0,
            keepalive_expiry=reader.number("keepalive_expiry_s", 30.0) or 30.0,
            trust_env=reader.boolean("trust_env", True),
        )


@functools.cache
def _ssl_context(trust_env: bool) -> ssl.SSLContext:
    """One verifying TLS context per process, shared by every client (loading the CA store costs
    ~40 ms and a few MB per context; contexts are safe to share). A CA bundle that cannot be loaded
    is a WireError naming where it came from; the next call tries again (failures are not cached)."""
    try:
        return httpx2.create_ssl_context(trust_env=trust_env)
    except OSError as exc:  # ssl.SSLError is one: a bundle that exists but is not PEM
        where = next((f" from {name}={os.environ[name]}" for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")
                      if trust_env and os.environ.get(name)), "")
        raise WireError("other", f"cannot load the CA certificates for TLS{where}: "
                                 f"{exc.strerror or exc}") from None


def check_base_url(base_url: str) -> str:
    if not isinstance(base_url, str) or not re.match(r"https?://[^/\s]+", base_url):
        raise ValueError("base_url must be an http:// or https:// URL")
    return base_url.rstrip("/")


# --------------------------------------------------------------------------- framing


async def iter_lines(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The body's lines as bytes, split on LF (a trailing CR is dropped); the last line may lack its LF."""
    pending = bytearray()
    async for chunk in response.aiter_bytes():
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if pending:
                pending += chunk[start:end]
                line = bytes(pending)
                pending.clear()
            else:
                line = chunk[start:end]
            yield line[:-1] if line.endswith(b"\r") else line
            start = end + 1
        if start < len(chunk):
            pending += chunk[start:]
            if len(pending) > _MAX_LINE:
                raise WireError("malformed", "a streamed line exceeds 16 MiB", retryable=True)
    if pending:
        yield bytes(pending[:-1] if pending.endswith(b"\r") else pending)


class SseParser:
    """Server-Sent Events: feed lines, get `(event, data)` at each blank line (`event` may be None)."""

    __slots__ = ("_data", "_event")

    def __init__(self) -> None:
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, line: bytes) -> tuple[str | None, bytes] | None:
        if not line:
            return self.flush()
        if line.startswith(b":"):
            return None  # comment / keep-alive
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            self._data.append(value)
        elif field == b"event":
            self._event = value.decode("utf-8", "replace")
        return None

    def flush(self) -> tuple[str | None, bytes] | None:
        """The pending event, if any (also used at end of stream for a last event without a blank line)."""
        if not self._data:
            self._event = None
            return None
        event, data = self._event, b"\n".join(self._data) if len(self._data) > 1 else self._data[0]
        self._event, self._data = None, []
        return event, data


class StreamDecoder:
    """One streamed answer in one wire format.

    `feed` gets each event (`event` is the SSE event name or None; `data` the raw payload) and
    returns a piece of answer text to pass on, "" for progress without text (e.g. reasoning), or
    None for bookkeeping events. `finished` turns true at the format's end marker; `result`
    builds the completion.
    """

    end_marker: ClassVar[str] = "end marker"
    finished: bool = False

    def feed(self, event: str | None, data: bytes) -> str | None:
        raise NotImplementedError

    def result(self) -> Completion:
        raise NotImplementedError


# --------------------------------------------------------------------------- error classification


@dataclass(slots=True)
class _ErrorInfo:
    message: str = ""
    type: str | None = None
    code: str | None = None
    status_name: str | None = None
    details: tuple[Mapping[str, Any], ...] = ()


def _error_info(raw: bytes) -> _ErrorInfo:
    """Understands the error bodies of all four formats (and plain text from proxies)."""
    try:
        body = json.loads(raw)
    except ValueError:
        text = " ".join(raw.decode("utf-8", "replace").split())
        return _ErrorInfo(message=text)
    if isinstance(body, list) and body:  # Gemini's JSON-array streaming wraps errors in a list
        body = body[0]
    if not isinstance(body, dict):
        return _ErrorInfo(message=str(body))
    return error_info_of(body.get("error", body))


def error_info_of(error: Any) -> _ErrorInfo:
    if isinstance(error, str):
        return _ErrorInfo(message=error)
    if not isinstance(error, dict):
        return _ErrorInfo(message="" if error is None else str(error))
    details = error.get("details")
    return _ErrorInfo(
        message=str(error.get("message") or ""),
        type=error.get("type") if isinstance(error.get("type"), str) else None,
        code=error.get("code") if isinstance(error.get("code"), str) else None,
        status_name=error.get("status") if isinstance(error.get("status"), str) else None,
        details=tuple(d for d in details if isinstance(d, dict)) if isinstance(details, list) else (),
    )


def parse_duration(value: Any) -> float | None:
    """A google.protobuf.Duration: "2s", "1.5s", "0.050s", or {"seconds": .., "nanos": ..}."""
    try:
        if isinstance(value, str) and value.endswith("s"):
            seconds = float(value[:-1])
        elif isinstance(value, dict):
            seconds = float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        else:
            return None
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_retry_after(headers: Mapping[str, str], details: Iterable[Mapping[str, Any]] = ()) -> float | None:
    """Seconds to wait: `retry-after-ms`, then `Retry-After` (seconds or HTTP date), then Gemini RetryInfo."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    header = headers.get("retry-after")
    if header:
        try:
            value = float(header)
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(header)
            except (TypeError, ValueError, IndexError):
                when = None
            if when is not None and when.tzinfo is not None:
                return max(0.0, when.timestamp() - time.time())
    for detail in details:
        if str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = parse_duration(detail.get("retryDelay"))
            if delay is not None:
                return delay
    return None


def _is_quota(status: int, info: _ErrorInfo, retry_after: float | None) -> bool:
    """A quota/billing failure that waiting will not fix (as opposed to a rate limit)."""
    if {info.type, info.code} & _QUOTA_CODES:
        return True
    failures = [d for d in info.details if str(d.get("@type", "")).endswith("QuotaFailure")]
    for failure in failures:
        for violation in failure.get("violations") or []:
            if isinstance(violation, dict):
                ident = f"{violation.get('quotaId', '')} {violation.get('quotaMetric', '')}".lower()
                if "perday" in ident or "per_day" in ident or "daily" in ident:
                    return True
    if status == 429 and retry_after is not None:
        return False  # a wait was advertised: a rate limit, whatever the wording
    if failures:
        return True
    return bool(_QUOTA_TEXT.search(info.message))


def error_from_status(status: int, headers: Mapping[str, str], raw: bytes) -> WireError:
    """Classify an HTTP error response (any of the four formats) into a `WireError`."""
    info = _error_info(raw)
    retry_after = parse_retry_after(headers, info.details)
    label = info.type or info.code or info.status_name
    message = info.message[: CAUSE_LIMIT * 2]
    cause = f"HTTP {status}" + (f" {label}" if label else "") + (f": {message}" if message else "")

    def error(kind: str, retryable: bool) -> WireError:
        return WireError(kind, cause, retryable=retryable, status=status, retry_after=retry_after)

    reasons = {str(d.get("reason", "")) for d in info.details}
    if status == 429:
        return error("quota", False) if _is_quota(status, info, retry_after) else error("rate_limit", True)
    if status == 402 or (status in (400, 403) and _is_quota(status, info, None) and "credit" in message.lower()):
        return error("quota", False)
    if info.type == "billing_error":
        return error("quota", False)
    if status in (401, 403) or "API_KEY_INVALID" in reasons or info.type == "authentication_error":
        return error("auth", False)
    if status == 404:
        return error("not_found", False)
    if status == 408:
        return error("timeout", True)
    if status == 529 or info.type == "overloaded_error":
        return error("overloaded", True)
    if status >= 500:
        return error("server", status not in (501, 505))
    if status >= 400:
        return error("bad_request", False)
    return error("other", False)  # a redirect or other unexpected status


def _transport_error(exc: httpx2.HTTPError, responded: bool) -> WireError:
    detail = str(exc) or type(exc).__name__
    name = type(exc).__name__
    if isinstance(exc, httpx2.ConnectTimeout):
        return WireError("connect", f"connect timeout ({name})", retryable=True)
    if isinstance(exc, httpx2.ConnectError):
        return WireError("connect", f"cannot connect ({name}): {detail}", retryable=True)
    if isinstance(exc, httpx2.PoolTimeout):
        return WireError("timeout", "no free connection in the pool (PoolTimeout)", retryable=True)
    if isinstance(exc, httpx2.TimeoutException):
        return WireError("timeout", f"{name}: {detail}", retryable=True)
    if isinstance(exc, httpx2.DecodingError):
        return WireError("malformed", f"response body could not be decoded ({name})", retryable=True)
    if isinstance(exc, httpx2.UnsupportedProtocol):
        return WireError("other", f"{name}: {detail}", retryable=False)
    if isinstance(exc, httpx2.TransportError):
        if responded:
            return WireError("stream", f"connection lost mid-response ({name}): {detail}", retryable=True)
        return WireError("connect", f"connection failed before a response ({name}): {detail}", retryable=True)
    return WireError("other", f"{name}: {detail}", retryable=True)


def _shape_error(exc: Exception) -> WireError:
    if isinstance(exc, json.JSONDecodeError):
        return WireError("malformed", f"invalid JSON from the provider: {exc.msg} at {exc.pos}", retryable=True)
    if isinstance(exc, UnicodeDecodeError):
        return WireError("malformed", "response is not valid UTF-8", retryable=True)
    return WireError("malformed", f"unexpected response shape ({type(exc).__name__}: {exc})", retryable=True)


def loads(raw: bytes | str) -> Any:
    return json.loads(raw)


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- the provider base


class _CallState:
    __slots__ = ("callback_error", "output_started", "responded")

    def __init__(self) -> None:
        self.responded = False
        self.output_started = False
        self.callback_error: BaseException | None = None  # raised by the caller's on_text: passed through

    async def emit(self, on_text: OnText, piece: str) -> None:
        self.output_started = True
        try:
            await on_text(piece)
        except BaseException as exc:
            self.callback_error = exc
            raise


_SHARD = 4  # connections per pool (see HttpProvider._acquire)


class HttpProvider:
    """Base of the native adapters: owns the client and the error boundary; subclasses own the format."""

    kind: ClassVar[str] = "http"
    default_base_url: ClassVar[str] = ""
    extra_settings: ClassVar[frozenset[str]] = frozenset()
    framing: ClassVar[str] = "sse"  # or "ndjson"

    def __init__(
        self,
        name: str,
        *,
        base_url: str,
        headers: Mapping[str, str],
        secrets: Iterable[str | None],
        options: HttpOptions,
    ) -> None:
        self.name = name
        self.base_url = check_base_url(base_url)
        self._headers = {"content-type": "application/json", **headers}
        values = {v for k, v in self._headers.items() if isinstance(v, str) and _SECRET_HEADER.search(k)}
        for value in list(values):  # "Bearer KEY" -> also scrub KEY alone
            values.update(part for part in value.split() if len(part) >= 8)
        values = {v for v in values if len(v) >= 4}
        values.update(s for s in secrets if s)  # the API key itself: always, whatever its length
        self._secrets = tuple(sorted(values, key=len, reverse=True))
        self._options = options
        pools = max(1, -(-options.max_connections // _SHARD))
        size, extra = divmod(options.max_connections, pools)  # sizes add up to max_connections exactly
        self._sizes = [size + (index < extra) for index in range(pools)]
        self._clients: list[httpx2.AsyncClient | None] = [None] * pools
        self._busy = [0] * pools  # calls in flight on each pool
        self._open = 0  # the first pool that may have a free connection
        self._ignored: set[str] = set()

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls,
        name: str,
        settings: Mapping[str, Any] | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        **_: Any,
    ) -> HttpProvider:
        """The registry factory: validates settings (unknown names are an error) and builds the adapter."""
        reader = SettingsReader(cls.kind, settings or {}, HTTP_SETTINGS | cls.extra_settings)
        options = HttpOptions.read(reader)
        return cls(
            name,
            base_url=base_url or cls.default_base_url,
            api_key=api_key or None,
            headers=dict(headers or {}),
            options=options,
            **cls.read_settings(reader),
        )

    @classmethod
    def read_settings(cls, reader: SettingsReader) -> dict[str, Any]:
        """Kind-specific keyword arguments for `__init__`."""
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, base_url={self.base_url!r})"

    # -- the client -------------------------------------------------------------------------

    def _acquire(self) -> int:
        """The pool for a new call: the first with a free connection, so that a few calls in flight
        keep reusing the same warm connections; when all are busy, the least busy. Release with
        `_release`.

        Many small pools (of `_SHARD` connections) work around httpcore2 walking every connection
        of its pool (several method calls each) on each request and each response close: with one
        pool of 1,000 connections a burst of 1,000 calls costs ~10^7 calls, and even 50
        connections in one pool cost about a quarter of a call's CPU. Filling them in order
        (rather than round-robin) keeps calls at low concurrency on one pool's connections instead
        of opening a connection per pool.
        """
        busy = self._busy
        index = self._open  # every pool before this one is full
        sizes = self._sizes
        while index < len(busy) and busy[index] >= sizes[index]:
            index += 1
        self._open = index
        if index == len(busy):  # all full: the least busy pool queues the call
            index = min(range(len(busy)), key=busy.__getitem__)
        busy[index] += 1
        return index

    def _release(self, index: int) -> None:
        self._busy[index] -= 1
        if index < self._open:
            self._open = index

    def prepare(self) -> None:
        """Load the HTTP client stack and the shared TLS context, which the first call would
        otherwise do on the call path: 50-150 ms, mostly imports (httpcore2, and trio when it is
        installed) and the CA store. Blocking; see `Preparable`."""
        _ssl_context(self._options.trust_env)

    def _http(self, index: int) -> httpx2.AsyncClient:
        """Pool `index`, created on first use."""
        client = self._clients[index]
        if client is None:
            opts = self._options
            per_pool = self._sizes[index]
            client = self._clients[index] = httpx2.AsyncClient(
                headers=self._headers,
                # Only the connect timeout here: the call's own deadline (first byte, idle gaps,
                # total) bounds reads, writes and the wait for a free connection, without a timer
                # per socket operation.
                timeout=httpx2.Timeout(connect=opts.connect_timeout, read=None, write=None, pool=None),
                limits=httpx2.Limits(
                    max_connections=per_pool,
                    max_keepalive_connections=min(per_pool, opts.max_keepalive_connections),
                    keepalive_expiry=opts.keepalive_expiry,
                ),
                trust_env=opts.trust_env,
                verify=_ssl_context(opts.trust_env),
                follow_redirects=False,
            )
        return client

    async def aclose(self) -> None:
        clients, self._clients = self._clients, [None] * len(self._clients)
        for client in clients:
            if client is not None:
                await client.aclose()

    # -- what subclasses provide ------------------------------------------------------------

    def endpoint(self, request: CompletionRequest, stream: bool) -> tuple[str, Mapping[str, str] | None]:
        raise NotImplementedError

    def payload(self, request: CompletionRequest, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def parse(self, data: Any, request: CompletionRequest) -> Completion:
        raise NotImplementedError

    def decoder(self, request: CompletionRequest) -> StreamDecoder:
        raise NotImplementedError

    # -- helpers for subclasses -------------------------------------------------------------

    def ignore_param(self, key: str) -> None:
        """Log (once per name, at debug) a generation parameter this wire format does not take."""
        if key not in self._ignored:
            self._ignored.add(key)
            logger.debug("provider '%s' (%s): ignoring unsupported parameter '%s'", self.name, self.kind, key)

    # -- the call ---------------------------------------------------------------------------

    async def complete(self, request: CompletionRequest, *, on_text: OnText | None = None) -> Completion:
        state = _CallState()
        pool = self._acquire()
        try:
            body = dumps(self.payload(request, on_text is not None))
            url, query = self.endpoint(request, on_text is not None)
            if on_text is None:
                return await self._once(request, url, query, body, state, pool)
            return await self._stream(request, url, query, body, on_text, state, pool)
        except WireError as exc:
            raise self._provider_error(exc, state) from None
        except httpx2.HTTPError as exc:
            if exc is state.callback_error:
                raise
            raise self._provider_error(_transport_error(exc, state.responded), state) from None
        except httpx2.InvalidURL as exc:
            if exc is state.callback_error:
                raise
            raise self._provider_error(WireError("other", f"invalid URL: {exc}"), state) from None
        finally:
            self._release(pool)

    def _provider_error(self, exc: WireError, state: _CallState) -> ProviderError:
        cause = self.scrub(exc.message)
        if len(cause) > CAUSE_LIMIT + 40:
            cause = cause[: CAUSE_LIMIT + 40].rstrip() + "..."
        return ProviderError(
            self.name,
            cause,
            kind=exc.kind,
            retryable=exc.retryable,
            status=exc.status,
            retry_after=exc.retry_after,
            output_started=state.output_started,
            usage=exc.usage,
        )

    def scrub(self, text: str) -> str:
        """`text` with every configured secret replaced by ***."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    async def _raise_status(self, response: httpx2.Response) -> None:
        raw = bytearray()
        async for chunk in response.aiter_bytes():
            raw += chunk
            if len(raw) >= _ERROR_BODY_LIMIT:
                break
        raise error_from_status(response.status_code, response.headers, bytes(raw))

    @staticmethod
    def _decode(fn: Callable[..., _T], *args: Any) -> _T:
        try:
            return fn(*args)
        except WireError:
            raise
        except (KeyError, IndexError, TypeError, AttributeError, ValueError) as exc:
            raise _shape_error(exc) from None

    def _total_timeout(self) -> WireError:
        limit = self._options.total_timeout
        return WireError("timeout", f"no complete answer within total_timeout_s={limit:g}", retryable=True)

    async def _once(
        self,
        request: CompletionRequest,
        url: str,
        query: Mapping[str, str] | None,
        body: bytes,
        state: _CallState,
        pool: int,
    ) -> Completion:
        # The streamed call's deadline, without the idle part: first_token_timeout_s until the
        # response starts, then what is left of total_timeout_s.
        watch = _Watchdog(self._options, anyio.current_time())
        with watch.scope:
            async with self._http(pool).stream("POST", url, params=query, content=body) as response:
                state.responded = True
                watch.scope.deadline = watch.total_deadline  # the first byte came; the total bounds the body
                if response.status_code >= 300:
                    await self._raise_status(response)
                raw = await response.aread()
            return self._decode(lambda: self.parse(loads(raw), request))
        # Only reached when our deadline fired (an outer cancel propagates past this point).
        if state.responded or anyio.current_time() >= watch.total_deadline:
            raise self._total_timeout()
        first = self._options.first_token_timeout
        raise WireError("timeout", f"no response within first_token_timeout_s={first:g}", retryable=True)

    async def _stream(
        self,
        request: CompletionRequest,
        url: str,
        query: Mapping[str, str] | None,
        body: bytes,
        on_text: OnText,
        state: _CallState,
        pool: int,
    ) -> Completion:
        opts = self._options
        decoder = self.decoder(request)
        watch = _Watchdog(opts, anyio.current_time())
        with watch.scope:
            async with self._http(pool).stream("POST", url, params=query, content=body) as response:
                state.responded = True
                if response.status_code >= 300:
                    await self._raise_status(response)
                if self.framing == "sse" and response.headers.get("content-type", "").startswith("application/json"):
                    # A server that ignored `stream: true` and answered in one piece.
                    raw = await response.aread()
                    completion = self._decode(lambda: self.parse(loads(raw), request))
                    if completion.text:
                        await state.emit(on_text, completion.text)
                    return completion
                async with contextlib.aclosing(self._events(response)) as events:
                    async for event in events:
                        watch.data()
                        if event is None:
                            continue
                        piece = self._decode(decoder.feed, *event)
                        if piece is None:
                            continue
                        watch.progress()
                        if piece:
                            await state.emit(on_text, piece)
                if not decoder.finished:
                    raise WireError(
                        "stream", f"stream ended without its end marker ({decoder.end_marker})", retryable=True
                    )
                return self._decode(decoder.result)
        # Only reached when the watchdog fired (an outer cancel propagates past this point).
        if anyio.current_time() >= watch.total_deadline:
            raise self._total_timeout()
        if watch.started:
            raise WireError(
                "timeout", f"stream stalled: no data for idle_timeout_s={opts.idle_timeout:g}", retryable=True
            )
        raise WireError(
            "timeout", f"no answer text within first_token_timeout_s={opts.first_token_timeout:g}", retryable=True
        )

    async def _events(self, response: httpx2.Response) -> AsyncIterator[tuple[str | None, bytes] | None]:
        """Each framed event of the body; None for a line that completes no event (still a sign of life)."""
        async with contextlib.aclosing(iter_lines(response)) as lines:
            if self.framing != "sse":
                async for line in lines:
                    yield (None, line) if line.strip() else None
                return
            sse = SseParser()
            async for line in lines:
                yield sse.feed(line)
            if (last := sse.flush()) is not None:
                yield last


class _Watchdog:
    """The one deadline of a call: first_token_timeout until the answer starts, then (streamed)
    idle_timeout, never past total_timeout.

    Once started, any received line pushes the deadline forward, at most every idle/10 seconds so
    a fast stream does not reschedule a timer per line. Time spent in the caller's `on_text`
    counts as stream time.
    """

    __slots__ = ("_idle", "_refreshed", "_slack", "scope", "started", "total_deadline")

    def __init__(self, opts: HttpOptions, now: float) -> None:
        self.started = False
        self._idle = opts.idle_timeout
        self._slack = opts.idle_timeout / 10
        self._refreshed = 0.0
        self.total_deadline = now + opts.total_timeout
        self.scope = anyio.CancelScope(deadline=min(now + opts.first_token_timeout, self.total_deadline))

    def data(self) -> None:
        if self.started and (now := anyio.current_time()) - self._refreshed > self._slack:
            self._refreshed = now
            self.scope.deadline = min(now + self._idle, self.total_deadline)

    def progress(self) -> None:
        if self.started:
            self.data()
            return
        self.started = True
        self._refreshed = now = anyio.current_time()
        self.scope.deadline = min(now + self._idle, self.total_deadline)


# --------------------------------------------------------------------------- shared result helpers


def finalise(
    request: CompletionRequest,
    *,
    text: str,
    finish: str,
    usage: Usage,
    model: str | None,
    structured: Any = None,
    refusal: str | None = None,
    tool_calls: tuple[ToolCall, ...] = (),
) -> Completion:
    """Build the completion; an answer with no content is a failure: `content_filter` when the
    provider's filter blocked it, else `empty` (retryable: a 200 with nothing in it is no answer).

    With an output schema, `structured` is the parsed answer (when the adapter did not already
    supply it) or None if the text is not JSON; the gateway validates it and reports.
    """
    if tool_calls:  # an answer that calls tools has no text of its own, and is not empty
        return Completion(text=text, finish_reason="tool_calls", usage=usage, model=model or request.model,
                          tool_calls=tool_calls)
    if not text and structured is None:
        if finish == "content_filter" or refusal:
            why = f": {refusal}" if refusal else ""
            raise WireError("content_filter", f"the answer was blocked by the provider's filter{why}"[:CAUSE_LIMIT],
                            usage=usage)
        # Out of tokens before any content (reasoning ate max_tokens): the same request would end the
        # same way, so only another target may help; any other empty answer is worth another try.
        raise WireError("empty", f"the provider answered with no content (finish reason '{finish}')",
                        retryable=finish != "length", usage=usage)
    if request.output_schema is not None and structured is None and text:
        try:
            structured = json.loads(text)
        except ValueError:
            structured = None
    return Completion(text=text, finish_reason=finish, usage=usage, model=model or request.model, structured=structured)


def int_of(value: Any) -> int:
    """A token count from a usage field (missing or null -> 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def arguments_object(text: str) -> Any:
    """A tool call's JSON arguments as the object Anthropic, Gemini and Ollama send back.

    A model's malformed or non-object arguments become `{}` so that replaying the turn never fails.
    """
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, Mapping) else {}


def stop_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]
