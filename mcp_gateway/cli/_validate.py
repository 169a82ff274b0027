"""`mcp-gateway validate`: everything `serve` would refuse, reported before serving."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from .._errors import ConfigError, ConfigIssue
from ._output import echo_json, table

__all__ = ["check_config", "validate"]


def check_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Any:
    """The gateway `serve` would serve from `path`; ConfigError with the issues of every stage,
    the serving protections (auth, rate limits, audit) included, each once."""
    from .._gateway import build_gateway, unique_issues

    env = os.environ if environ is None else environ
    gateway, loaded, issues = build_gateway(path, environ=env)
    # Protections can only fail on the sections they build (and loading them costs the SDK's import).
    if loaded is not None and (loaded.auth or loaded.rate_limits or loaded.audit):
        import anyio

        from ..server import build_protections

        try:
            protections = build_protections(loaded, env)
        except ConfigError as exc:
            issues = unique_issues([*issues, *exc.issues])
        except Exception as exc:  # a builder that raised instead of reporting: still located, still exit 2
            origin = next(
                (s.origin for s in (loaded.auth, loaded.rate_limits, loaded.audit) if s is not None), None
            )
            where = origin.issue((), "") if origin is not None else ConfigIssue(loaded.files[0], 1, 1, "", "")
            issues = unique_issues(
                [
                    *issues,
                    ConfigIssue(where.file, where.line, where.column, where.path, f"cannot serve: {exc}"),
                ]
            )
        else:
            anyio.run(protections.aclose)
    if issues:
        raise ConfigError(issues)
    return gateway


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary (or the errors) as JSON.")
def validate(config: str, as_json: bool) -> None:
    """Check CONFIG and everything it includes; list what it serves.

    Runs every stage `serve` runs before serving (files, schemas, templates, providers, sessions,
    auth, rate limits, audit), so whatever `serve` would refuse is reported here. Every error of
    every file is reported at once, each as file:line:column, config path and message. Exits with
    status 2 when there is any error.
    """
    try:
        gateway = check_config(config)
    except ConfigError as exc:
        if as_json:
            echo_json(
                {
                    "ok": False,
                    "errors": [
                        {
                            "file": i.file,
                            "line": i.line,
                            "column": i.column,
                            "path": i.path,
                            "message": i.message,
                        }
                        for i in exc.issues
                    ],
                }
            )
        else:
            click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    from datetime import UTC, datetime

    from ..routing import price_warnings

    catalog = gateway.catalog
    tools = catalog.tools.all()
    warnings = price_warnings(
        gateway.router, {t.config.model for t in catalog.tools.served()}, datetime.now(UTC).date()
    )
    if as_json:
        echo_json(
            {
                "ok": True,
                "warnings": warnings,
                "files": list(gateway.files),
                "tools": [
                    {
                        "name": t.name,
                        "version": t.config.version,
                        "status": t.config.status,
                        "model": t.config.model,
                        "structured": t.config.output_schema is not None,
                    }
                    for t in tools
                ],
                "prompts": [p.name for p in catalog.prompts.all()],
                "resources": [r.uri for r in catalog.resources.static()]
                + [r.config.uri_template for r in catalog.resources.templates()],
            }
        )
        return
    for warning in warnings:  # not errors: the config serves, but its costs may be wrong
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{config}: OK ({len(gateway.files)} file{'s' if len(gateway.files) != 1 else ''})\n")
    click.echo(
        table(
            ["TOOL", "VERSION", "STATUS", "MODEL", "OUTPUT", "DESCRIPTION"],
            [
                [
                    t.name,
                    t.config.version,
                    t.config.status,
                    t.config.model,
                    "structured" if t.config.output_schema else "text",
                    t.config.description,
                ]
                for t in tools
            ],
        )
    )
    click.echo()
    click.echo(
        table(
            ["PROMPT", "ARGUMENTS", "DESCRIPTION"],
            [
                [
                    p.name,
                    ", ".join(a.name + ("" if a.required else "?") for a in p.arguments),
                    p.description or "",
                ]
                for p in catalog.prompts.all()
            ],
        )
    )
    click.echo()
    click.echo(
        table(
            ["RESOURCE", "MIME TYPE", "DESCRIPTION"],
            [
                *(
                    [r.uri, r.config.mime_type, r.config.description or ""]
                    for r in catalog.resources.static()
                ),
                *(
                    [r.config.uri_template or "", r.config.mime_type, r.config.description or ""]
                    for r in catalog.resources.templates()
                ),
            ],
        )
    )
