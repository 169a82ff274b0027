"""Background upkeep while serving: reload the config on SIGHUP and (with --watch) when a config
file changes, sweep expired sessions, and dispose of retired tools' data once their retention ends.

A new config is loaded in full and swapped in only if it is valid; otherwise its errors are logged
and the last good config keeps serving. The replaced gateway's providers are closed after a grace
period, so calls still running on them can finish.

In a cluster (`cluster:`) a reload on one process is announced on the cluster's channel and every
other process reloads its own copy of the config too (and tells its clients); `mcp-gateway
reload CONFIG` asks them all at once. The config version is a digest of the config files.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .._errors import ConfigError, GatewayError
from .._gateway import Gateway, load_gateway
from ..cluster import ClusterEvents, breakers, share
from ..lifecycle._dispose import dispose_tool, due_for_disposal
from ..observability.audit import AuditLog
from ._live import LiveGateway

__all__ = ["Reloader"]

log = logging.getLogger("mcp_gateway.reload")

CLOSE_GRACE_SECONDS = 60.0


def config_version(gateway: Gateway) -> str:
    """A digest of the config files' bytes: equal on every host that serves the same config."""
    digest = hashlib.sha256()
    for name in gateway.files:
        try:
            digest.update(Path(name).read_bytes())
        except OSError:
            digest.update(b"\0missing:" + name.encode())
    return digest.hexdigest()[:16]


def _snapshot(files: Sequence[str]) -> dict[str, tuple[int, int] | None]:
    state: dict[str, tuple[int, int] | None] = {}
    for name in files:
        try:
            st = os.stat(name)
            state[name] = (st.st_mtime_ns, st.st_size)
        except OSError:
            state[name] = None
    return state


class Reloader:
    def __init__(self, live: LiveGateway, config_path: str | Path, *, watch_interval: float | None = None,
                 audit: AuditLog | None = None, clock: Callable[[], float] = time.time) -> None:
        self.live = live
        self.config_path = config_path
        self.watch_interval = watch_interval
        self.audit = audit  # where automatic disposals are recorded
        self._clock = clock
        self._disposed: set[str] = set()  # tools this process already disposed of
        self._lock = anyio.Lock()
        self._task_group: TaskGroup | None = None
        self.events: ClusterEvents | None = None
        self.version = config_version(live.gateway)

    async def reload(self, task_group: TaskGroup | None = None, *, announce: bool = True) -> bool:
        """Load the config anew; swap it in if valid. Returns whether it was swapped. In a cluster,
        `announce` tells the other processes to reload too."""
        task_group = task_group or self._task_group
        async with self._lock:
            try:
                gateway = await anyio.to_thread.run_sync(load_gateway, self.config_path)
            except ConfigError as exc:
                log.error("reload refused, still serving the previous config:\n%s", exc)
                return False
            current = self.live.gateway
            keep_link = (current.cluster is not None and gateway.cluster is not None
                         and current.cluster.settings() == gateway.cluster.settings())
            if keep_link:
                # Same cluster: keep the live link (it runs the channel and broadcasts).
                assert gateway.cluster is not None and current.cluster is not None
                await gateway.cluster.aclose()
                share(gateway.router, current.cluster)
                gateway = dataclasses.replace(gateway, cluster=current.cluster)
            keep_sessions = (
                current.sessions is not None and gateway.sessions is not None
                and current.sessions.settings == gateway.sessions.settings
            )
            if keep_sessions:
                # Same store settings: keep the live store (an in-memory one holds the sessions).
                assert gateway.sessions is not None
                await gateway.sessions.store.aclose()
                gateway = dataclasses.replace(gateway, sessions=current.sessions)
            # Budget spending, cost totals, the response cache and breaker state carry over.
            gateway.router.adopt(current.router)
            await gateway.warm_up()  # usually instant: the set-up is per process, done at start
            old = await self.live.swap(gateway)
            self.version = config_version(gateway)
        if task_group is not None:
            task_group.start_soon(self._close_later, old, keep_sessions, keep_link)
        if announce and self.events is not None and self.events.link is gateway.cluster:
            await self.events.announce(self.version)
        return True

    async def _close_later(self, old: Gateway, keep_sessions: bool, keep_link: bool) -> None:
        await anyio.sleep(CLOSE_GRACE_SECONDS)
        await old.router.aclose()
        if old.sessions is not None and not keep_sessions:
            await old.sessions.store.aclose()
        if old.cluster is not None and not keep_link:
            await old.cluster.aclose()

    async def _reload_for_cluster(self) -> tuple[bool, str]:
        swapped = await self.reload(announce=False)
        return swapped, self.version

    async def start(self, task_group: TaskGroup) -> None:
        """Start reloading on SIGHUP (handler installed before this returns: SIGHUP's default
        action would end the process), on file changes when watching, and sweeping sessions."""
        self._task_group = task_group
        await task_group.start(self._on_sighup, task_group)
        task_group.start_soon(self._sweep_sessions)
        link = self.live.gateway.cluster
        if link is not None:
            self.events = ClusterEvents(link, on_reload=self._reload_for_cluster, version=lambda: self.version,
                                        breakers=lambda: breakers(self.live.gateway.router))
            task_group.start_soon(self.events.run, task_group)
        if self.watch_interval:
            # The first snapshot is taken now: a change made once `start` returns is seen.
            task_group.start_soon(self._watch, task_group, _snapshot(self.live.gateway.files))

    async def dispose_due(self) -> list[str]:
        """Dispose of the data of every tool whose retention after retirement has ended (once per
        process and tool); return their names."""
        gateway = self.live.gateway
        today = datetime.datetime.fromtimestamp(self._clock(), tz=datetime.timezone.utc).date()
        done: list[str] = []
        for tool in due_for_disposal(gateway.catalog.tools, today):
            if tool in self._disposed:
                continue
            try:
                report = await dispose_tool(gateway, tool, audit=self.audit, principal="mcp-gateway (retention)")
            except GatewayError as exc:
                log.warning("disposal of retired tool '%s' failed (tried again later): %s", tool, exc)
                continue
            self._disposed.add(tool)
            done.append(tool)
            log.info("retention of retired tool '%s' ended: %d stored items disposed of", tool, report.total)
        return done

    async def _sweep_sessions(self, interval: float = 10.0) -> None:
        """End idle and over-age sessions, purge old ones, dispose of retired tools' data; whichever
        config is live at the time."""
        while True:
            await self.dispose_due()
            await anyio.sleep(interval)
            manager = self.live.gateway.sessions
            if manager is not None:
                try:
                    await manager.sweep()
                except GatewayError as exc:
                    log.warning("session sweep failed: %s", exc)

    async def _on_sighup(self, task_group: TaskGroup, *, task_status: TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGHUP) as signals:
            task_status.started()
            async for _ in signals:
                log.info("SIGHUP: reloading %s", self.config_path)
                await self.reload(task_group)

    async def _watch(self, task_group: TaskGroup, seen: dict[str, tuple[int, int] | None]) -> None:
        assert self.watch_interval
        while True:
            await anyio.sleep(self.watch_interval)
            now = _snapshot(self.live.gateway.files)
            if now != seen:
                log.info("config changed on disk: reloading %s", self.config_path)
                await self.reload(task_group)
                # Whatever the outcome, wait for the next change before trying again; a file keeps
                # the state it had before this reload began, so an edit saved while it ran is seen.
                seen = {name: now.get(name, state) for name, state in _snapshot(self.live.gateway.files).items()}
