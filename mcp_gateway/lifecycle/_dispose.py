"""Disposal: when a tool's life ends, its stored data goes too, from every store, with a record of it.

A tool's data is its session turns and its cached answers (memory, SQLite or Redis, whichever
the config uses); nothing of another tool is touched, since stores delete by the tool's name.
Disposal is per tool name (every version): turns do not record a version, and a name whose
other versions still serve keeps its data. The audit log keeps who called what; it is the record
of the disposal itself and is never rewritten.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .._errors import GatewayError
from .._gateway import Gateway
from ..catalog import ToolRegistry
from ..observability.audit import AuditEvent, AuditLog

__all__ = ["DisposalReport", "dispose_tool", "due_for_disposal", "still_served"]

log = logging.getLogger("mcp_gateway.lifecycle")


@dataclass(slots=True)
class DisposalReport:
    tool: str
    dry_run: bool
    deleted: dict[str, int] = field(default_factory=dict)  # what -> how many ("session turns (sqlite)": 3)
    at: float = field(default_factory=time.time)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "dry_run": self.dry_run, "deleted": dict(self.deleted), "at": self.at}


def still_served(registry: ToolRegistry, tool: str) -> list[str]:
    """Versions of `tool` that are not retired (a tool is disposed of only once all are)."""
    return [t.config.version for t in registry.versions(tool) if t.config.status != "retired"]


def due_for_disposal(registry: ToolRegistry, today: datetime.date) -> list[str]:
    """Tools whose every version is retired and whose newest version's retention ran out by `today`."""
    due: list[str] = []
    for name in registry.names():
        versions = registry.versions(name)
        newest = versions[0].config
        if still_served(registry, name) or newest.retention_days is None or newest.sunset is None:
            continue
        if newest.sunset + datetime.timedelta(days=newest.retention_days) <= today:
            due.append(name)
    return due


async def dispose_tool(gateway: Gateway, tool: str, *, dry_run: bool = False, audit: AuditLog | None = None,
                       principal: str = "mcp-gateway") -> DisposalReport:
    """Delete (or, with `dry_run`, count) every stored item of `tool`; audit a real disposal.

    Raises GatewayError (e.g. SessionStoreError) when a store fails: a disposal must not pass
    silently half done. Running it again finishes the job."""
    report = DisposalReport(tool, dry_run)
    if gateway.sessions is not None:
        store = gateway.sessions.settings.store
        report.deleted[f"session turns ({store})"] = await gateway.sessions.store.dispose_tool(tool, dry_run=dry_run)
    cache = gateway.router.cache
    if cache is not None:
        kind = type(cache).__name__.removesuffix("Cache").lower() or "cache"
        try:
            count = await cache.dispose_tool(tool, dry_run=dry_run)
        except GatewayError:
            raise
        except Exception as exc:  # a cache backend's own error (e.g. Redis unreachable)
            raise GatewayError(f"response cache ({kind}): disposal of '{tool}' failed: {type(exc).__name__}: {exc}") \
                from exc
        report.deleted[f"cached answers ({kind})"] = count
    if not dry_run:
        log.info("disposed of tool '%s': %s", tool, json.dumps(report.deleted))
        if audit is not None:
            await audit.record(AuditEvent(
                principal=principal, method="lifecycle/dispose", target=tool, outcome="ok",
                detail=json.dumps(report.deleted, sort_keys=True), ts=report.at))
    return report
