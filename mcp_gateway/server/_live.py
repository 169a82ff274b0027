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
from ..security.limits import CallDeadlineError
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
        self._calls: set[_InFlight] = set()

    def call(self, deadline_s: float | None = None) -> _InFlight:
        """Count a tool call as in flight, so shutdown can wait for it; cancel it when `deadline_s`
        passes (CallDeadlineError) or when shutdown cuts it short (`cancel_calls`: ShuttingDownError,
        a proper error result rather than a dropped connection). One cancel scope does both."""
        return _InFlight(self._calls, deadline_s)

    @property
    def in_flight(self) -> int:
        """How many tool calls are running (shutdown waits for them)."""
        return len(self._calls)

    def cancel_calls(self) -> int:
        """Cancel every call in flight; each ends with an error result. Returns how many."""
        calls = list(self._calls)
        for call in calls:
            call.cut()
        return len(calls)

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
    """One call in flight, in the live gateway's set while it runs. (A class, not a generator
    context manager: it runs on every call.)"""

    __slots__ = ("_calls", "_cut", "_scope", "_seconds")

    def __init__(self, calls: set[_InFlight], seconds: float | None) -> None:
        self._calls = calls
        self._seconds = seconds
        self._cut = False
        self._scope = anyio.CancelScope() if seconds is None else anyio.move_on_after(seconds)

    def cut(self) -> None:
        """Cancel the call for shutdown."""
        self._cut = True
        self._scope.cancel()

    def __enter__(self) -> None:
        self._calls.add(self)
        try:
            self._scope.__enter__()
        except BaseException:
            self._calls.discard(self)
            raise

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        scope = self._scope
        try:
            swallowed = scope.__exit__(exc_type, exc, tb)
        finally:
            self._calls.discard(self)
        if scope.cancelled_caught:
            if self._cut or self._seconds is None:
                raise ShuttingDownError("The gateway is shutting down and cancelled this call at the end of "
                                        "its shutdown grace period; retry it")
            raise CallDeadlineError("call_deadline_s", f"the call did not finish within its deadline of "
                                    f"{self._seconds:g} s", maximum=self._seconds)
        return swallowed
