"""Connect to any MCP server: a command line (stdio), an http(s) URL (Streamable HTTP) or a URL
ending in /sse (legacy HTTP+SSE). Built on the SDK's `Client`; its errors are translated here."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, nullcontext
from typing import Any, Literal, TextIO

import anyio
import httpx2
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .._protocol import SESSION_META_KEY
from ._errors import ClientError, ClientTimeoutError, ConnectError, HttpStatusError, RemoteError
from ._command import server_argv
from ._spawn import process_streams

__all__ = ["GatewayClient", "connect", "parse_target"]

log = logging.getLogger("mcp_gateway.client")

Mode = Literal["auto", "legacy"]


class _HttpRefusal:
    """The last error status an HTTP server answered with. The SDK turns a 401/403 into a bare
    "Server returned an error response"; this keeps what the server actually said."""

    def __init__(self) -> None:
        self.error: HttpStatusError | None = None

    async def __call__(self, response: httpx2.Response) -> None:
        if response.status_code in (401, 403, 404):
            url = str(response.request.url)
            self.error = HttpStatusError(response.status_code, response.reason_phrase, url)
        elif response.is_success:
            self.error = None


def parse_target(
    target: str | Sequence[str] | subprocess.Popen[bytes],
    *,
    env: Mapping[str, str] | None = None,
    errlog: TextIO | None = None,
    headers: Mapping[str, str] | None = None,
    _refusal: _HttpRefusal | None = None,
) -> Any:
    """What the SDK client connects to for `target` (see module docstring).

    A stdio server inherits our whole environment (the SDK would pass only a few safe variables,
    and a config's `${env:VAR}` references would then be unset), with `env` added over it.
    `errlog` receives a stdio server's stderr (default: ours); `headers` go with every HTTP request
    (e.g. {"Authorization": "Bearer ..."}). A server process already started (`_spawn.start_server`)
    is spoken to over its pipes.
    """
    if isinstance(target, subprocess.Popen):
        return process_streams(target)
    if isinstance(target, str) and target.startswith(("http://", "https://")):
        if target.rstrip("/").endswith("/sse"):
            return sse_client(target, headers=dict(headers) if headers else None)
        return _streamable_http(target, dict(headers or {}), _refusal)
    argv = server_argv(target)
    params = StdioServerParameters(command=argv[0], args=argv[1:], env={**os.environ, **(env or {})})
    return stdio_client(params, errlog=errlog or sys.stderr)


@asynccontextmanager
async def _streamable_http(
    url: str, headers: dict[str, str], refusal: _HttpRefusal | None
) -> AsyncIterator[Any]:
    async with create_mcp_http_client(headers=headers or None) as http:
        if refusal is not None:
            http.event_hooks = {**http.event_hooks, "response": [*http.event_hooks["response"], refusal]}
        async with streamable_http_client(url, http_client=http) as streams:
            yield streams


def _translate(exc: BaseException, refusal: _HttpRefusal | None = None) -> ClientError:
    """Find the meaningful error inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, ClientError):
        return exc
    if isinstance(exc, httpx2.HTTPStatusError):
        response = exc.response
        return HttpStatusError(response.status_code, response.reason_phrase, str(response.request.url))
    if isinstance(exc, MCPError) and refusal is not None and refusal.error is not None \
            and exc.code in (types.INTERNAL_ERROR, types.METHOD_NOT_FOUND, types.INVALID_REQUEST):
        return refusal.error  # the SDK's stand-in for an HTTP error status
    if isinstance(exc, MCPError):
        if exc.code == types.REQUEST_TIMEOUT:
            return ClientTimeoutError(exc.message)
        if exc.code == types.CONNECTION_CLOSED:
            return ConnectError("the server closed the connection")
        return RemoteError(exc.code, exc.message, exc.data)
    if isinstance(exc, TimeoutError):
        return ClientTimeoutError(str(exc) or "timed out")
    if isinstance(exc, (OSError, httpx2.HTTPError, anyio.BrokenResourceError, anyio.ClosedResourceError,
                        anyio.EndOfStream)):
        return ConnectError(f"connection failed: {type(exc).__name__}: {exc}")
    return ClientError(f"{type(exc).__name__}: {exc}")


_CHANGE_METHODS = {
    "notifications/tools/list_changed": "tools",
    "notifications/prompts/list_changed": "prompts",
    "notifications/resources/list_changed": "resources",
}
_CHANGE_EVENTS = {ToolsListChanged: "tools", PromptsListChanged: "prompts", ResourcesListChanged: "resources"}


class _ChangeFeed:
    """Fans handshake-era list_changed notifications out to whoever is listening."""

    def __init__(self) -> None:
        self._listeners: set[MemoryObjectSendStream[str]] = set()

    async def __call__(self, message: Any) -> None:
        kind = _CHANGE_METHODS.get(getattr(message, "method", ""))
        for listener in list(self._listeners) if kind else ():
            try:
                listener.send_nowait(kind)
            except anyio.WouldBlock:
                pass  # the listener is behind; it will refetch anyway

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[MemoryObjectReceiveStream[str]]:
        send, receive = anyio.create_memory_object_stream[str](64)
        self._listeners.add(send)
        try:
            yield receive
        finally:
            self._listeners.discard(send)
            send.close()
            receive.close()


class GatewayClient:
    """An open connection; every method raises only `ClientError` subclasses."""

    def __init__(self, client: Client, timeout: float | None, feed: _ChangeFeed,
                 refusal: _HttpRefusal | None = None) -> None:
        self._client = client
        self._timeout = timeout
        self._feed = feed
        self._refusal = refusal

    @asynccontextmanager
    async def changes(self) -> AsyncIterator[AsyncIterator[str]]:
        """Yield an iterator of "tools", "prompts" or "resources" each time the server's list changes.

        Works in both eras: list_changed notifications (handshake era) or a
        `subscriptions/listen` stream (2026-07-28).
        """
        if self.protocol_version in MODERN_PROTOCOL_VERSIONS:
            try:
                async with self._client.listen(
                    tools_list_changed=True, prompts_list_changed=True, resources_list_changed=True
                ) as subscription:
                    yield (_CHANGE_EVENTS[type(event)] async for event in subscription
                           if type(event) in _CHANGE_EVENTS)
            except (MCPError, OSError) as exc:
                raise _translate(exc) from None
        else:
            async with self._feed.subscribe() as receive:
                yield receive

    @property
    def protocol_version(self) -> str:
        return self._client.protocol_version

    @property
    def server_info(self) -> types.Implementation | None:
        return self._client.server_info

    @property
    def capabilities(self) -> types.ServerCapabilities:
        return self._client.server_capabilities

    async def _run(self, call: Any) -> Any:
        try:
            with anyio.fail_after(self._timeout) if self._timeout else nullcontext():
                return await call
        except TimeoutError:
            raise ClientTimeoutError(f"no answer within {self._timeout} s") from None
        except ClientError:
            raise
        except BaseException as exc:
            if isinstance(exc, anyio.get_cancelled_exc_class()):
                raise
            raise _translate(exc, self._refusal) from None

    async def list_tools(self) -> list[types.Tool]:
        return (await self._run(self._client.list_tools())).tools

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        progress_callback: Any = None,
        session: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> types.CallToolResult:
        """Call a tool. A failed tool is a result with `is_error`; only protocol failures raise.

        `session` is an mcp-gateway session handle (from the `session_start` tool); it travels in
        `_meta`, so it works in both protocol eras."""
        request_meta: dict[str, Any] = dict(meta or {})
        if session is not None:
            request_meta[SESSION_META_KEY] = session
        return await self._run(self._client.call_tool(
            name, dict(arguments or {}), progress_callback=progress_callback,
            meta=request_meta or None))  # type: ignore[arg-type]

    async def list_prompts(self) -> list[types.Prompt]:
        return (await self._run(self._client.list_prompts())).prompts

    async def get_prompt(self, name: str, arguments: Mapping[str, str] | None = None) -> types.GetPromptResult:
        return await self._run(self._client.get_prompt(name, dict(arguments or {})))

    async def list_resources(self) -> list[types.Resource]:
        return (await self._run(self._client.list_resources())).resources

    async def list_resource_templates(self) -> list[types.ResourceTemplate]:
        return (await self._run(self._client.list_resource_templates())).resource_templates

    async def read_resource(self, uri: str) -> types.ReadResourceResult:
        return await self._run(self._client.read_resource(uri))


@asynccontextmanager
async def connect(
    target: str | Sequence[str] | subprocess.Popen[bytes],
    *,
    mode: Mode = "auto",
    timeout: float | None = 60.0,
    env: Mapping[str, str] | None = None,
    errlog: TextIO | None = None,
    headers: Mapping[str, str] | None = None,
    logging_callback: Any = None,
    sampling_callback: Any = None,
    elicitation_callback: Any = None,
) -> AsyncIterator[GatewayClient]:
    """Open a connection to `target` for the duration of the `async with` block.

    `mode="legacy"` forces the initialize handshake; "auto" prefers the 2026-07-28 protocol and
    falls back. A stdio server inherits our environment plus `env`; its stderr goes to `errlog`
    (default: kept aside, and its last lines added to the ConnectError if the connection fails).
    `target` may also be a server process already started with `_spawn.start_server` (its stderr
    and environment were set then). Raises ConnectError when the server cannot be reached.
    """
    with contextlib.ExitStack() as files:
        # Quiet by default: a stdio server's log is kept aside, and shown only if it fails to start.
        starts_server = not isinstance(target, subprocess.Popen) and not (
            isinstance(target, str) and target.startswith(("http://", "https://")))
        kept = files.enter_context(tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")) \
            if errlog is None and starts_server else None
        try:
            async with _connect(target, mode, timeout, env, errlog or kept, headers, logging_callback,
                                sampling_callback, elicitation_callback) as client:
                yield client
        except ConnectError as exc:
            if kept is None or exc.__class__ is not ConnectError:
                raise
            kept.seek(0)
            tail = kept.read().splitlines()[-20:]
            if not tail:
                raise
            said = "\n".join("  " + line for line in tail)
            raise ConnectError(f"{exc}; the server said:\n{said}") from None


@asynccontextmanager
async def _connect(
    target: str | Sequence[str] | subprocess.Popen[bytes], mode: Mode, timeout: float | None, env: Mapping[str, str] | None,
    errlog: TextIO | None, headers: Mapping[str, str] | None, logging_callback: Any, sampling_callback: Any,
    elicitation_callback: Any,
) -> AsyncIterator[GatewayClient]:
    feed = _ChangeFeed()
    refusal = _HttpRefusal()
    client = Client(
        parse_target(target, env=env, errlog=errlog, headers=headers, _refusal=refusal),
        message_handler=feed,
        mode=mode,
        logging_callback=logging_callback,
        sampling_callback=sampling_callback,
        elicitation_callback=elicitation_callback,
        cache=None,
    )
    try:
        await client.__aenter__()
    except BaseException as exc:
        if isinstance(exc, (anyio.get_cancelled_exc_class(), KeyboardInterrupt)):
            raise
        raise _translate(exc, refusal) from None
    try:
        yield GatewayClient(client, timeout, feed, refusal)
    except BaseException as exc:
        try:
            await client.__aexit__(type(exc), exc, exc.__traceback__)
        except BaseException as exit_exc:
            # The block's own error comes first, unless the block was only cancelled because the
            # connection failed underneath it: then the connection's error is the news.
            cancelled = anyio.get_cancelled_exc_class()
            if isinstance(exc, cancelled) and not isinstance(exit_exc, (cancelled, KeyboardInterrupt)):
                raise _translate(exit_exc, refusal) from None
        raise
    else:
        # The work is done: a server that vanished while we said goodbye is not an error.
        try:
            await client.__aexit__(None, None, None)
        except Exception as exc:
            log.debug("closing the connection failed: %s", _translate(exc))
