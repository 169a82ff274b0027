"""The cluster's channel: one Redis pub/sub channel (`<prefix>events`) carrying JSON messages.

Kinds: `reload` (every process reloads its config; sent by a process that reloaded, or by
`mcp-gateway reload`), `reloaded` (a process' answer, with its config version), `breaker` (a
circuit opened or closed). The listener reconnects with backoff after an outage; on every
(re)connection it compares the last published config version with its own and reloads if they
differ, so a reload announced while this process could not hear it is not lost.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ._breaker import SharedBreaker
from ._link import RedisLink, is_outage

__all__ = ["ClusterEvents", "publish", "request_reload"]

log = logging.getLogger("mcp_gateway.cluster")

OnReload = Callable[[], Awaitable[tuple[bool, str]]]  # -> (swapped or unchanged, config version)


async def publish(link: RedisLink, kind: str, **body: Any) -> int:
    """Send a message to every process; returns how many listened."""
    message = json.dumps({"kind": kind, "from": link.process_id, **body})
    return int(await link.client.publish(link.key("events"), message))


class ClusterEvents:
    """Listens on the cluster's channel for one process."""

    def __init__(self, link: RedisLink, *, on_reload: OnReload, version: Callable[[], str],
                 breakers: Callable[[], Mapping[str, SharedBreaker]]) -> None:
        self.link = link
        self._on_reload = on_reload
        self._version = version
        self._breakers = breakers
        self.connected = anyio.Event()  # set once the first subscription is in place

    async def announce(self, version: str) -> None:
        """This process reloaded to `version`: record it and tell the others."""
        try:
            await self.link.client.set(self.link.key("config", "version"), version)
            await publish(self.link, "reload", version=version)
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.link.warn("config reloads", exc, "other processes pick the reload up when it answers again")

    async def run(self, group: TaskGroup) -> None:
        """Listen until cancelled, reconnecting after outages (0.1 s doubling to 5 s between tries)."""
        self.link.attach(group)
        delay = 0.1
        try:
            while True:
                try:
                    await self._listen()
                except Exception as exc:
                    if not is_outage(exc):
                        raise
                    self.link.warn("the cluster channel", exc, f"reconnecting (next try in {delay:.1f} s)")
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
        finally:
            self.link.attach(None)

    async def _listen(self) -> None:
        pubsub = self.link.client.pubsub()
        try:
            await pubsub.subscribe(self.link.key("events"))
            self.connected.set()
            published = await self.link.client.get(self.link.key("config", "version"))
            if published is not None and published.decode() != self._version():
                log.info("cluster: config version %s was published while this process was away: reloading",
                         published.decode())
                await self._reload()
            while True:
                # A bounded wait: a dead connection is noticed by the next get_message, not never.
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    await self._dispatch(message.get("data"))
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.link.timeout_s):
                await pubsub.aclose()

    async def _dispatch(self, data: Any) -> None:
        try:
            message = json.loads(data)
        except (TypeError, ValueError):
            log.warning("cluster: ignored a message that is not JSON on the channel")
            return
        if not isinstance(message, dict) or message.get("from") == self.link.process_id:
            return
        kind = message.get("kind")
        if kind == "reload":
            log.info("cluster: reload requested by %s", message.get("from"))
            await self._reload()
        elif kind == "breaker":
            breaker = self._breakers().get(str(message.get("name")))
            if breaker is not None:
                breaker.heard(message)

    async def _reload(self) -> None:
        ok, version = await self._on_reload()
        try:
            await publish(self.link, "reloaded", ok=ok, version=version)
        except Exception as exc:
            if not is_outage(exc):
                raise


async def request_reload(link: RedisLink, *, timeout_s: float) -> tuple[int, list[dict[str, Any]]]:
    """Ask every process to reload; returns (processes listening, their answers within `timeout_s`).

    Raises what the Redis client raises when Redis cannot be reached (see `is_outage`)."""
    answers: list[dict[str, Any]] = []
    pubsub = link.client.pubsub()
    try:
        await pubsub.subscribe(link.key("events"))
        listening = await publish(link, "reload") - 1  # ourselves excluded
        with anyio.move_on_after(timeout_s):
            while len(answers) < listening:
                raw = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                if raw is None:
                    continue
                try:
                    message = json.loads(raw.get("data"))
                except (TypeError, ValueError):
                    continue
                if isinstance(message, dict) and message.get("kind") == "reloaded":
                    answers.append(message)
        versions = {a.get("version") for a in answers if a.get("ok")}
        if len(versions) == 1:
            await link.client.set(link.key("config", "version"), str(versions.pop()))
    finally:
        await pubsub.aclose()
    return listening, answers
