"""`mcp-gateway sessions ...`: look after the sessions kept in a config's SQLite or Redis store."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import click

from .._errors import ConfigError, GatewayError
from ._output import echo_json, table, utc_time

__all__ = ["sessions"]


def _with_manager(config: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from ..config import load_config
    from ..sessions import build_sessions

    try:
        loaded = load_config(config)
        manager, issues = build_sessions(loaded, os.environ)
        if issues:
            raise ConfigError(issues)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    if manager is None:
        raise click.ClickException(f"{config} has no sessions (add a 'sessions:' section)")
    if manager.settings.store == "memory":
        raise click.ClickException("the memory store lives inside the serving process; "
                                   "configure 'store: sqlite' or 'store: redis' to manage sessions from outside")

    async def go() -> Any:
        try:
            return await work(manager)
        finally:
            await manager.store.aclose()

    try:
        return anyio.run(go)
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def sessions() -> None:
    """Inspect and manage sessions in a config's SQLite or Redis store."""


@sessions.command("list")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--active/--ended", "active", default=None, help="Only active, or only ended, sessions.")
@click.option("--limit", type=int, default=100, show_default=True,
              help="Show at most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the sessions as JSON.")
def list_sessions(config: str, active: bool | None, limit: int, as_json: bool) -> None:
    """List sessions, newest first."""
    records = _with_manager(config, lambda m: m.store.list(active=active, limit=limit))
    if as_json:
        echo_json([r.to_dict() for r in records])
        return
    click.echo(table(["SESSION", "OWNER", "STARTED", "LAST SEEN", "TURNS", "STATUS"], [
        [r.id, r.owner, utc_time(r.created_at), utc_time(r.last_seen), str(r.turn_count),
         "active" if r.active else f"ended ({r.end_reason})"] for r in records]))


@sessions.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("session_id")
def show(config: str, session_id: str) -> None:
    """Print one session's record and state as JSON."""
    async def work(manager: Any) -> Any:
        record = await manager.store.get(session_id)
        if record is None:
            raise click.ClickException(f"unknown session '{session_id}'")
        return record

    echo_json(_with_manager(config, work).to_dict())


@sessions.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("session_id")
def end(config: str, session_id: str) -> None:
    """End a session now; its handle stops working."""
    record = _with_manager(config, lambda m: m.end(session_id, None))
    click.echo(f"{record.id}: ended ({record.end_reason}) after {record.turn_count} turns")


@sessions.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--older-than", type=float, default=None, metavar="SECONDS",
              help="Purge sessions that ended more than this long ago (default: the config's retention_s).")
def purge(config: str, older_than: float | None) -> None:
    """End expired sessions, then delete the data of sessions ended before the retention time."""
    async def work(manager: Any) -> tuple[int, int]:
        expired = await manager.store.expire(time.time())
        retention = manager.settings.retention_s if older_than is None else older_than
        return len(expired), await manager.store.purge(time.time() - retention)

    expired, purged = _with_manager(config, work)
    click.echo(f"{expired} expired, {purged} purged")


@sessions.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("session_id")
@click.option("--format", "fmt", type=click.Choice(["json", "jsonl"]), default="json", show_default=True,
              help="json: one document; jsonl: the session, then one turn per line.")
def export(config: str, session_id: str, fmt: str) -> None:
    """Export a session with its full history (json: one document; jsonl: the record, then one turn a line)."""
    async def work(manager: Any) -> Any:
        record = await manager.store.get(session_id)
        if record is None:
            raise click.ClickException(f"unknown session '{session_id}'")
        return record, await manager.store.history(session_id)

    record, turns = _with_manager(config, work)
    if fmt == "json":
        echo_json({"session": record.to_dict(), "turns": [t.to_dict() for t in turns]})
    else:
        click.echo(json.dumps(record.to_dict(), ensure_ascii=False))
        for turn in turns:
            click.echo(json.dumps(turn.to_dict(), ensure_ascii=False))
