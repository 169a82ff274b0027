"""uvicorn's server without its 10 Hz poll: an idle gateway sleeps until there is work.

`uvicorn.Server.main_loop` wakes every 0.1 s to see whether `should_exit` was set, and refreshes
the cached `Date` header on every tenth wake-up. That is ten wake-ups a second for a gateway with
nothing to do, each on a cold cache when the machine is busy. Here `should_exit` is a property
whose setter wakes the loop, so the loop sleeps a whole second (the `Date` header's resolution)
and still exits at once when asked. Shutdown code waits for `exit_requested` instead of polling.
"""

from __future__ import annotations

import asyncio

import uvicorn

__all__ = ["Server"]

_DATE_REFRESH_S = 1.0  # the Date header has one-second resolution


class Server(uvicorn.Server):
    """A `uvicorn.Server` whose main loop sleeps until a shutdown request or the next Date refresh."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._should_exit = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_requested: asyncio.Event | None = None
        super().__init__(config)

    @property  # type: ignore[override]
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if value and self._loop is not None and self._exit_requested is not None:
            # Also called from uvicorn's signal handler, which may interrupt the loop mid-step:
            # the thread-safe call is the one that is safe there, and it wakes a sleeping loop.
            self._loop.call_soon_threadsafe(self._exit_requested.set)

    async def exit_requested(self) -> None:
        """Return once a shutdown was requested (a signal, or `should_exit = True`)."""
        await self._event().wait()

    def _event(self) -> asyncio.Event:
        if self._exit_requested is None:
            self._loop = asyncio.get_running_loop()
            self._exit_requested = asyncio.Event()
            if self._should_exit:
                self._exit_requested.set()
        return self._exit_requested

    async def main_loop(self) -> None:
        event = self._event()
        counter = 0  # on_tick refreshes the Date header whenever counter % 10 == 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            try:
                async with asyncio.timeout(_DATE_REFRESH_S):
                    await event.wait()
            except TimeoutError:
                pass
