"""A client that hangs up cancels its call.

An HTTP client that goes away (a closed tab, its own timeout, Ctrl-C) will never read the answer,
so the call behind it, and the provider request it is waiting for, is cancelled at once rather
than run to the end and paid for. Every HTTP surface that runs a call (REST and the chat API,
streamed or not) runs it through `until_disconnect`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from starlette.requests import ClientDisconnect
from starlette.types import Receive

__all__ = ["CLIENT_CLOSED", "until_disconnect"]

T = TypeVar("T")

#: The status of a request whose client left before its answer (nginx's convention), as middleware sees it.
CLIENT_CLOSED = 499


async def until_disconnect(receive: Receive, work: Callable[[], Awaitable[T]]) -> T:
    """`await work()`, cancelled if the client disconnects first: then ClientDisconnect is raised.

    Call it once the request body has been read: the next message `receive` gives is then the
    disconnect (the server sends it when the connection closes)."""
    done = False
    result: T | None = None
    failure: Exception | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        try:
            result, done = await work(), True
        except Exception as exc:  # raised below: from inside the group it would come out wrapped
            failure = exc
        group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if not done:
        raise ClientDisconnect()
    return result  # type: ignore[return-value]
