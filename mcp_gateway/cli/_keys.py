"""`mcp-gateway keys ...`: API keys for the HTTP transports (stored only as salted hashes)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import click

from .._errors import ConfigError
from ._output import echo_json, table, utc_time

__all__ = ["keys"]


def _store(config: str) -> Any:
    from ..config import load_config
    from ..server import key_store

    try:
        loaded = load_config(config)
        store = key_store(loaded, os.environ)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    if store is None:
        raise click.ClickException(f"{config} has no 'auth: {{keys_file: ...}}' (or keys_redis) to keep keys in")
    return store


@click.group()
def keys() -> None:
    """Create, list and revoke API keys (for `serve --transport http` with `auth:` configured).

    A key's scopes say what it may use: tools:NAME (globs allowed, e.g. tools:* or tools:summar*),
    prompts:NAME, resources:URI-GLOB, sessions:own.
    """


@keys.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="Who or what the key is for.")
@click.option("--scope", "scopes", multiple=True, required=True, metavar="SCOPE",
              help="What the key may use; repeatable (e.g. --scope 'tools:*').")
@click.option("--rpm", type=int, help="Requests per minute for this key.")
@click.option("--tpm", type=int, help="Tokens per minute for this key.")
@click.option("--concurrency", type=int, help="Calls in flight at once for this key.")
def create(config: str, name: str, scopes: Sequence[str], rpm: int | None, tpm: int | None,
           concurrency: int | None) -> None:
    """Create a key and print it. It is shown this once: only a salted hash is stored."""
    from ..security import RateLimits

    from ..security import KeyStoreError

    limits = RateLimits(rpm, tpm, concurrency) if (rpm or tpm or concurrency) else None
    try:
        key_id, plaintext = _store(config).create(name, list(scopes), limits)
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created key {key_id} for {name!r} (scopes: {', '.join(scopes)})", err=True)
    click.echo(plaintext)


@keys.command("list")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
def list_keys(config: str, as_json: bool) -> None:
    """List keys (never their secrets)."""
    from ..security import KeyStoreError

    try:
        records = _store(config).list()
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json([{"key_id": r.key_id, "name": r.name, "scopes": list(r.scopes), "created_at": r.created_at,
                    "revoked_at": r.revoked_at} for r in records])
        return
    click.echo(table(["KEY", "NAME", "SCOPES", "CREATED", "STATUS"], [
        [r.key_id, r.name, " ".join(r.scopes), utc_time(r.created_at, seconds=False),
         f"revoked {utc_time(r.revoked_at, seconds=False)}" if r.revoked_at else "active"] for r in records]))


@keys.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("key_id")
def revoke(config: str, key_id: str) -> None:
    """Revoke a key. Running gateways refuse it within a second (file: on their next request after
    1 s; Redis: when the change message arrives)."""
    from ..security import KeyStoreError

    try:
        record = _store(config).revoke(key_id)
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked {record.key_id} ({record.name})")
