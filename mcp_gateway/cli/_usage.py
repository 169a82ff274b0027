"""`mcp-gateway usage CONFIG`: calls, tokens and cost per tool, model alias or key, from the ledger.

A cluster's ledger lives in Redis (the config's `cluster:` section, once clustering is merged) and
is read from there; a single gateway keeps its ledger in memory, so `--url` asks the running
process (`GET /catalog/usage.json`). Calls whose price is unknown are counted apart, never as $0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import anyio
import click

from .._errors import ConfigError
from ._output import echo_json, table

__all__ = ["usage"]

_BY = {"tool": "tool", "model": "route", "key": "key"}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_since(text: str | None) -> float | None:
    """`90s`, `30m`, `1h`, `7d` in seconds; a bare number counts days."""
    if text is None:
        return None
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        raise click.BadParameter(f"'{text}' is not a duration such as 30m, 1h or 7d", param_hint="--since")
    return float(match.group(1)) * _UNITS[match.group(2) or "d"]


def _from_gateway(url: str, token: str | None, by: str, since: float | None) -> dict[str, Any]:
    import httpx2

    params = {"by": by, **({"since": repr(since)} if since is not None else {})}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx2.get(url.rstrip("/") + "/catalog/usage.json", params=params, headers=headers, timeout=30)
    except httpx2.HTTPError as exc:
        raise click.ClickException(f"could not reach {url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        try:
            detail = response.json().get("error") or response.reason_phrase
        except ValueError:
            detail = response.reason_phrase
        raise click.ClickException(f"{url} answered {response.status_code}: {detail}")
    return response.json()


def _from_cluster(config: str, by: str, since: float | None) -> dict[str, Any]:
    """Totals from the shared ledger in the cluster's Redis, when the config has one."""
    from ..config import load_config

    try:
        loaded = load_config(config)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    try:
        from .. import cluster  # type: ignore[attr-defined]
    except ImportError:
        cluster = None
    if cluster is None or getattr(loaded, "cluster", None) is None:
        raise click.ClickException(
            f"{config} has no shared ledger (no `cluster:` section), so usage lives in each gateway process: "
            "ask a running gateway with --url http://HOST:PORT")
    link, issues = cluster.open_link(loaded, os.environ)
    if issues or link is None:
        raise click.ClickException("; ".join(str(i) for i in issues) or "no cluster link")

    async def read() -> Mapping[str, Any]:
        ledger = cluster.SharedLedger(link)
        try:
            return await ledger.totals(by=by, since=since)
        finally:
            closing = getattr(link, "aclose", None)
            if closing is not None:
                await closing()

    found = anyio.run(read)
    rows = [{"name": name, "calls": t.calls, "failed": t.failed, "tokens": t.input_tokens + t.output_tokens,
             "cost_usd": str(t.cost_usd), "unpriced_calls": t.unknown_cost} for name, t in found.items()]
    rows.sort(key=lambda r: (-Decimal(r["cost_usd"]), -r["calls"], r["name"]))
    window = "since start-up" if since is None else f"last {since:g} s"
    return {"by": by, "window": window, "note": None, "rows": rows}


def _cost(row: Mapping[str, Any]) -> str:
    known = Decimal(row["cost_usd"])
    unpriced = row["unpriced_calls"]
    text = f"${known:f}" if known else ""
    if unpriced:
        return f"{text} + {unpriced} unpriced" if text else f"unknown ({unpriced} unpriced)"
    return text or "$0"


@click.command("usage")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--by", type=click.Choice(sorted(_BY)), default="tool", show_default=True,
              help="Group by tool, model alias or API key.")
@click.option("--since", "since_text", metavar="DURATION",
              help="Only the last DURATION (30m, 1h, 7d; a bare number is days). Default: since start-up.")
@click.option("--url", metavar="URL", help="Ask this running gateway (http://HOST:PORT) instead of the cluster's Redis.")
@click.option("--token", envvar="MCP_GATEWAY_TOKEN", metavar="TOKEN",
              help="With --url: an API key with the scope tools:* (env MCP_GATEWAY_TOKEN).")
@click.option("--deprecated", is_flag=True,
              help="Instead: who still calls deprecated tool versions (from the audit log), with their "
              "replacement and sunset date, so owners can reach them before the sunset.")
@click.option("--json", "as_json", is_flag=True, help="Print the totals as JSON.")
def usage(config: str, by: str, since_text: str | None, url: str | None, token: str | None, deprecated: bool,
          as_json: bool) -> None:
    """Calls, tokens and cost (USD) per tool, model alias or key; unpriced calls are counted apart.

    With --deprecated, the callers of deprecated tool versions instead, from CONFIG's audit log."""
    since = parse_since(since_text)
    if deprecated:
        from ._lifecycle import callers_report

        callers_report(config, deprecated=True, since_seconds=since, as_json=as_json)
        return
    document = _from_gateway(url, token, _BY[by], since) if url else _from_cluster(config, _BY[by], since)
    document["by"] = by
    if as_json:
        echo_json(document)
        return
    click.echo(f"Usage per {by}, {document['window']}:")
    if document.get("note"):
        click.echo(document["note"])
        return
    rows = [[r["name"], str(r["calls"]), str(r["failed"]), str(r["tokens"]), _cost(r)] for r in document["rows"]]
    if not rows:
        click.echo("No calls.")
        return
    click.echo(table([by, "calls", "failed", "tokens", "cost (USD)"], rows))
    unpriced = sum(r["unpriced_calls"] for r in document["rows"])
    total = sum((Decimal(r["cost_usd"]) for r in document["rows"]), Decimal(0))
    click.echo(f"\nTotal: ${total:f}" + (f" plus {unpriced} unpriced call(s) whose cost is unknown" if unpriced else ""))
