"""The gateway currently served, swappable at run time, and the clients to tell when it changes.

Handshake-era connections are told with `notifications/*/list_changed` on their own session;
2026-07-28 clients hear it on their `subscriptions/listen` stream through the subscription bus.
"""

from __future__ import annotations

import logging
import weakref
from types import TracebackType
from typing import Any

import anyio
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    PromptsListChanged,
    ResourcesListChanged,
    SubscriptionBus,
    ToolsListChanged,
)

from .._errors import ShuttingDownError
from .._gateway import Gateway
from ._views import McpViews

__all__ = ["LiveGateway"]

log = logging.getLogger("mcp_gateway.server")


class LiveGateway:
    def __init__(self, gateway: Gateway, *, bus: SubscriptionBus | None = None) -> None:
        self.gateway = gateway
        self.views = McpViews.from_gateway(gateway)
        self.bus: SubscriptionBus = bus or InMemorySubscriptionBus()
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self.draining = False  # set on SIGTERM: new requests are refused (503) so a balancer retries them
        self._calls: set[anyio.CancelScope] = set()  # one cancel scope per call in flight

    def call(self) -> _InFlight:
        """Count a tool call as in flight, so shutdown can wait for it, and let shutdown cut it
        short with a proper error result (`cancel_calls`) rather than a dropped connection."""
        return _InFlight(self._calls)

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    def cancel_calls(self) -> int:
        """Cancel every call in flight; each ends with an error result. Returns how many."""
        scopes = list(self._calls)
        for scope in scopes:
            scope.cancel()
        return len(scopes)

    def track(self, connection: Any) -> None:
        """Remember a handshake-era connection so it hears about changes; forgotten when it ends."""
        self._connections.add(connection)

    async def swap(self, gateway: Gateway) -> Gateway:
        """Serve `gateway` from now on, tell every connected client, and return the old one."""
        old, self.gateway = self.gateway, gateway
        old_views, self.views = self.views, McpViews.from_gateway(gateway)
        changed = {
            "tools": old_views.tools != self.views.tools,
            "prompts": old_views.prompts != self.views.prompts,
            "resources": (old_views.resources, old_views.templates) != (self.views.resources, self.views.templates),
        }
        for kind, event in (("tools", ToolsListChanged()), ("prompts", PromptsListChanged()),
                            ("resources", ResourcesListChanged())):
            if changed[kind]:
                await self.bus.publish(event)
        for connection in list(self._connections):
            try:
                if changed["tools"]:
                    await connection.send_tool_list_changed()
                if changed["prompts"]:
                    await connection.send_prompt_list_changed()
                if changed["resources"]:
                    await connection.send_resource_list_changed()
            except Exception:  # a connection that went away meanwhile
                self._connections.discard(connection)
        log.info("now serving %d tools (changed: %s; %d connections told)", len(gateway.catalog.tools),
                 ", ".join(k for k, v in changed.items() if v) or "nothing", len(self._connections))
        return old


class _InFlight:
    """One call in flight: its cancel scope is in the live gateway's set while it runs. (A class,
    not a generator context manager: it runs on every call.)"""

    __slots__ = ("_calls", "_scope")

    def __init__(self, calls: set[anyio.CancelScope]) -> None:
        self._calls = calls
        self._scope = anyio.CancelScope()

    def __enter__(self) -> None:
        self._calls.add(self._scope)
        try:
            self._scope.__enter__()
        except BaseException:
            self._calls.discard(self._scope)
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        scope = self._scope
        try:
            swallowed = scope.__exit__(exc_type, exc, tb)
        finally:
            self._calls.discard(scope)
        if scope.cancelled_caught:
            raise ShuttingDownError("The gateway is shutting down and cancelled this call at the end of its "
                                    "shutdown grace period; retry it")
        return swallowed
