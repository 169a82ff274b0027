"""`mcp-gateway test`, `diff`, `usage` and `dispose`: a tool's lifecycle, run from Git and CI."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import click

from .._errors import ConfigError, ToolNotFoundError
from ._output import echo_json, table

__all__ = ["callers_report", "lifecycle_commands"]


def _gateway(config: str, *, record: str | None = None, replay: str | None = None,
             environ: Mapping[str, str] | None = None) -> Any:
    """A gateway able to call every tool version (drafts too), its providers wrapped for record/replay."""
    from .._gateway import load_gateway
    from ..lifecycle import RecordingProvider, ReplayEnviron, ReplayingProvider

    env: Mapping[str, str] = os.environ if environ is None else environ
    wrap = None
    if record is not None:
        directory = Path(record)
        wrap = lambda provider: RecordingProvider(provider, directory)  # noqa: E731
    elif replay is not None:
        directory = Path(replay)
        if not directory.is_dir():
            raise click.ClickException(f"--replay {replay}: no such directory (record one with --record)")
        env = ReplayEnviron(env)
        wrap = lambda provider: ReplayingProvider(provider, directory)  # noqa: E731
    try:
        return load_gateway(config, environ=env, every_route=True, wrap_provider=wrap)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None


def run_test_suite(gateway: Any, *, tool: str | None, model: str | None) -> tuple[list[Any], list[Any]]:
    """(outcomes, untested served versions) for the selected tools."""
    from ..lifecycle import run_tests, select_versions, untested

    if model is not None and model not in gateway.router.routes:
        raise click.ClickException(f"--model {model}: unknown model alias "
                                   f"(defined: {', '.join(sorted(gateway.router.routes)) or 'none'})")
    try:
        versions = select_versions(gateway, tool)
    except ToolNotFoundError as exc:
        raise click.ClickException(str(exc)) from None

    async def go() -> list[Any]:
        try:
            return await run_tests(gateway, versions, model=model)
        finally:
            await gateway.aclose()

    return anyio.run(go), untested(versions)


def _cost(value: Any) -> str:
    return "unknown" if value is None else f"${value:.6f}"


def _junit(path: str, outcomes: Sequence[Any]) -> None:
    suite = ET.Element("testsuite", name="mcp-gateway", tests=str(len(outcomes)),
                       failures=str(sum(1 for o in outcomes if not o.passed)))
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=f"{o.tool}@{o.version}", name=o.test,
                             time=f"{(o.latency_ms or 0) / 1000:.3f}")
        if not o.passed:
            failure = ET.SubElement(case, "failure", message=o.failures[0])
            failure.text = "\n".join(o.failures)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


@click.command("test")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--tool", help="Only this tool (all its versions), or one version: NAME.v1, NAME.v1.4.0, NAME.LABEL.")
@click.option("--model", help="Answer with this model alias instead of each tool's own.")
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), help="Also write a JUnit XML report here.")
@click.option("--record", type=click.Path(file_okay=False), help="Save every provider answer in this directory.")
@click.option("--replay", type=click.Path(file_okay=False),
              help="Answer from answers saved with --record: no network, no keys needed.")
@click.option("--gate", is_flag=True, help="Also fail when a published or deprecated version has no tests.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def test_command(config: str, tool: str | None, model: str | None, junit_file: str | None, record: str | None,
                 replay: str | None, gate: bool, as_json: bool) -> None:
    """Run the tests written in CONFIG's tool files against each tool's route.

    \b
    Every callable version is tested (drafts too; retired ones are skipped), by default on the
    route each tool names. Exits 1 when a test fails (or, with --gate, a served version has none).
    A real-model suite: run once with --record DIR, commit DIR, and run CI with --replay DIR.
    """
    if record and replay:
        raise click.UsageError("give --record or --replay, not both")
    gateway = _gateway(config, record=record, replay=replay)
    outcomes, bare = run_test_suite(gateway, tool=tool, model=model)
    if junit_file:
        _junit(junit_file, outcomes)
    failed = [o for o in outcomes if not o.passed]
    if as_json:
        echo_json({"passed": len(outcomes) - len(failed), "failed": len(failed),
                   "untested": [f"{t.name}@{t.config.version}" for t in bare],
                   "results": [{"tool": o.tool, "version": o.version, "test": o.test, "passed": o.passed,
                                "failures": o.failures, "cost_usd": None if o.cost_usd is None else float(o.cost_usd),
                                "latency_ms": o.latency_ms, "output_tokens": o.output_tokens} for o in outcomes]})
    else:
        click.echo(table(["TOOL", "VERSION", "TEST", "RESULT", "COST", "LATENCY", "DETAIL"], [
            [o.tool, o.version, o.test, "pass" if o.passed else "FAIL", _cost(o.cost_usd),
             "-" if o.latency_ms is None else f"{o.latency_ms:.0f} ms", "; ".join(o.failures)]
            for o in outcomes], max_width=90))
        click.echo(f"\n{len(outcomes) - len(failed)} passed, {len(failed)} failed")
        for version in bare:
            click.echo(f"{'error' if gate else 'note'}: {version.name} {version.config.version} is "
                       f"{version.config.status} and has no tests", err=True)
    if failed or (gate and bare):
        raise SystemExit(1)


lifecycle_commands = [test_command]


def _load_config(path: str, label: str) -> Any:
    from ..config import load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(f"{label} config is invalid:\n{exc}", err=True)
        raise SystemExit(2) from None


@click.command("diff")
@click.argument("configs", nargs=-1, metavar="OLD NEW | CONFIG")
@click.option("--against", "ref", metavar="REF", help="Compare CONFIG with itself at this Git ref (e.g. main).")
@click.option("--gate", is_flag=True,
              help="Eval gate: versions becoming published, or changed while published, must have passing tests.")
@click.option("--replay", type=click.Path(file_okay=False), help="With --gate: run the tests on recorded answers.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def diff_command(configs: Sequence[str], ref: str | None, gate: bool, replay: str | None, as_json: bool) -> None:
    """Compare two configs tool by tool; exit 1 on a change that would break callers.

    \b
    Reports every tool added, removed or changed (versions, statuses, schema changes classified
    as breaking or compatible). Fails on a breaking change without a major version bump, on a
    published version removed (or retired) without being deprecated first, and with --gate on a
    version that becomes published, or changes while published, without passing tests.
    \b
      mcp-gateway diff old/gateway.yaml gateway.yaml
      mcp-gateway diff --against origin/main gateway.yaml --gate --replay recordings
    """
    import tempfile

    from ..lifecycle._diff import diff_configs, gate_versions
    from ..lifecycle._git import GitError, export_config

    with tempfile.TemporaryDirectory(prefix="mcp-gateway-diff-") as scratch:
        if ref is not None:
            if len(configs) != 1:
                raise click.UsageError("with --against REF, give one CONFIG")
            new_path = configs[0]
            try:
                old_path = export_config(ref, new_path, Path(scratch))
            except GitError as exc:
                raise click.ClickException(f"cannot read {new_path} at {ref}: {exc}") from None
        else:
            if len(configs) != 2:
                raise click.UsageError("give OLD and NEW configs, or --against REF CONFIG")
            old_path, new_path = Path(configs[0]), configs[1]
        old = _load_config(str(old_path), f"the old ({ref})" if ref else "the old") if old_path else None
        new = _load_config(new_path, "the new")
    diffs = diff_configs(old, new)
    problems = [p for d in diffs for p in d.problems]
    if gate:
        problems += _eval_gate(new_path, gate_versions(old, new), replay)
    if as_json:
        echo_json({"ok": not problems, "problems": problems, "tools": [
            {"name": d.name, "change": d.change, "notes": d.notes, "problems": d.problems,
             "schema_changes": [{"path": c.path, "message": c.message, "breaking": c.breaking}
                                for c in d.schema_changes]} for d in diffs]})
    else:
        for d in diffs:
            if d.change == "unchanged":
                continue
            click.echo(f"{d.name}: {d.change}")
            for note in d.notes:
                click.echo(f"  {note}")
            for change in d.schema_changes:
                click.echo(f"  {change}")
        unchanged = sum(1 for d in diffs if d.change == "unchanged")
        click.echo(f"{len(diffs) - unchanged} tool(s) changed, {unchanged} unchanged")
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
    if problems:
        raise SystemExit(1)


def _eval_gate(config: str, versions: Sequence[Any], replay: str | None) -> list[str]:
    """The gate's findings: versions without tests, and versions whose tests fail."""
    if not versions:
        return []
    problems = [f"'{v.value.name}' {v.value.version} becomes published (or changes while published) without tests: "
                "add `tests:` to it (a release is gated on them)" for v in versions if not v.value.tests]
    wanted = {(v.value.name, v.value.version) for v in versions if v.value.tests}
    if not wanted:
        return problems
    from ..lifecycle import run_tests

    gateway = _gateway(config, replay=replay)
    chosen = [t for t in gateway.catalog.tools.all() if (t.name, t.config.version) in wanted]

    async def go() -> list[Any]:
        try:
            return await run_tests(gateway, chosen)
        finally:
            await gateway.aclose()

    for outcome in anyio.run(go):
        if not outcome.passed:
            problems.append(f"'{outcome.tool}' {outcome.version} test '{outcome.test}' fails: "
                            + "; ".join(outcome.failures))
    return problems


lifecycle_commands.append(diff_command)


@click.command("dispose")
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("tool")
@click.option("--dry-run", is_flag=True, help="Only count what would be deleted.")
@click.option("--force", is_flag=True, help="Dispose of a tool that still has versions served (not retired).")
@click.option("--json", "as_json", is_flag=True, help="Print what was (or would be) deleted as JSON.")
def dispose_command(config: str, tool: str, dry_run: bool, force: bool, as_json: bool) -> None:
    """Delete every stored item of TOOL: session turns and cached answers, in the stores CONFIG names.

    \b
    Meant for a retired tool (every version retired, or removed from CONFIG); the serving gateway
    also does it by itself once a retired tool's `retention_days` after its `sunset` have passed.
    A real disposal is written to the audit log (what was deleted, and when). Nothing of another
    tool is touched. Memory stores live inside the serving process and are not reachable from here.
    """
    from .._errors import GatewayError
    from .._gateway import load_gateway
    from ..lifecycle._dispose import dispose_tool, still_served
    from ..observability.audit import AuditLog
    from ..server._protections import audit_sink

    try:
        gateway = load_gateway(config)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    served = still_served(gateway.catalog.tools, tool)
    if served and not force:
        anyio.run(gateway.aclose)
        raise click.ClickException(
            f"tool '{tool}' still has versions that are not retired ({', '.join(served)}): retire it first "
            "(deprecated -> retired), or pass --force")
    if tool not in gateway.catalog.tools.names():
        click.echo(f"note: '{tool}' is not in {config}; disposing of its data anyway", err=True)
    in_process = [what for what, memory in (
        ("sessions", gateway.sessions is not None and gateway.sessions.settings.store == "memory"),
        ("response cache", type(gateway.router.cache).__name__ == "MemoryCache")) if memory]

    async def go() -> Any:
        try:
            if gateway.loaded.audit is None or dry_run:
                return await dispose_tool(gateway, tool, dry_run=dry_run, principal="mcp-gateway dispose")
            async with AuditLog(audit_sink(gateway.loaded)) as audit:
                return await dispose_tool(gateway, tool, dry_run=dry_run, audit=audit, principal="mcp-gateway dispose")
        finally:
            await gateway.aclose()

    try:
        report = anyio.run(go)
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from None
    for what in in_process:
        report.deleted.pop("session turns (memory)" if what == "sessions" else "cached answers (memory)", None)
    if as_json:
        echo_json({**report.to_dict(), "not_reachable": in_process})
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{tool}: {verb} " + (", ".join(f"{n} {what}" for what, n in report.deleted.items()) or "nothing"))
    for what in in_process:
        click.echo(f"note: the {what} store is in memory, inside the serving process; it disposes of its own "
                   "data when the retention ends (or on restart, when memory is empty)", err=True)


def _read_audit(path: Path) -> list[dict[str, Any]]:
    import json
    import sqlite3

    if not path.exists():
        return []
    if path.suffix in (".sqlite", ".db", ".sqlite3"):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            cursor = db.execute("SELECT * FROM audit_events ORDER BY seq")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor]
        finally:
            db.close()
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a torn last line of a crashed writer
    return events


def callers_report(config: str, *, deprecated: bool, since_seconds: float | None, as_json: bool) -> None:
    """Who calls which tool version, from CONFIG's audit log (calls, last call, per API key or user);
    `mcp-gateway usage --deprecated` prints it.

    With `deprecated`, the callers of deprecated versions, with the replacement and sunset date to
    tell them about.
    """
    import time

    from ..config import load_config
    from ..server._protections import audit_path
    from ._output import utc_time

    try:
        loaded = load_config(config)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        raise SystemExit(2) from None
    path = audit_path(loaded)
    if path is None:
        raise click.ClickException(f"{config} keeps no audit log (add `audit: {{path: audit.jsonl}}`)")
    since = time.time() - since_seconds if since_seconds is not None else None
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for event in _read_audit(path):
        if event.get("method") != "tools/call" or (since is not None and (event.get("ts") or 0) < since):
            continue
        if deprecated and event.get("status") != "deprecated":
            continue
        key = (str(event.get("target")), str(event.get("version") or "?"), str(event.get("principal")))
        row = rows.setdefault(key, {"tool": key[0], "version": key[1], "principal": key[2], "calls": 0,
                                    "last_call": 0.0})
        row["calls"] += 1
        row["last_call"] = max(row["last_call"], float(event.get("ts") or 0))
    names: dict[str, str] = {}  # principal -> API key name, so a person knows whom to reach
    if loaded.auth is not None and loaded.auth.value.keys_file:
        from ..security import KeyStore

        names = {record.principal: record.name for record in KeyStore(loaded.root / loaded.auth.value.keys_file).list()}
    versions = {(t.value.name, t.value.version): t.value for t in loaded.tools}
    for row in rows.values():
        row["key_name"] = names.get(row["principal"])
        tool = versions.get((row["tool"], row["version"]))
        row["replacement"] = tool.replacement if tool else None
        row["sunset"] = tool.sunset.isoformat() if tool and tool.sunset else None
    ordered = sorted(rows.values(), key=lambda r: (r["tool"], r["version"], -r["calls"]))
    if as_json:
        echo_json(ordered)
        return
    if not ordered:
        click.echo("no calls to deprecated tool versions" if deprecated else "no tool calls recorded")
        return
    click.echo(table(["TOOL", "VERSION", "CALLER", "CALLS", "LAST CALL", "REPLACEMENT", "SUNSET"], [
        [r["tool"], r["version"], r["principal"] + (f" ({r['key_name']})" if r["key_name"] else ""), str(r["calls"]),
         utc_time(r["last_call"]),
         r["replacement"] or "-", r["sunset"] or "-"] for r in ordered]))


lifecycle_commands.append(dispose_command)
