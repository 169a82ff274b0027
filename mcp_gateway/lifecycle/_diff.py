"""Compare two configs tool by tool, and say which changes a release must not contain.

Rules (each failure is a `problem`, worded for the reviewer of a pull request):

- a breaking schema change needs a new major version (`1.4.0 -> 2.0.0`); within a major line,
  or with the version unchanged, it fails;
- a published version leaves only through deprecation: it may be removed once it was
  `deprecated` or `retired` in the old config, and it may not jump straight to `retired`;
- with the eval gate, a version that becomes published, or changes while published, must have
  tests (checked here) that pass (run by the caller, see `gate_versions`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..catalog._versions import major, version_key
from ..config import LoadedConfig, Located, ToolConfig
from ._compat import SchemaChange, compare_schemas

__all__ = ["ToolDiff", "diff_configs", "gate_versions"]

# Fields that say where a tool is in its life, not what it does: changing them is no content change.
_LIFECYCLE_FIELDS = {"status", "tests", "labels", "sunset", "replacement", "deprecation_note", "retention_days",
                     "deprecated_on"}


@dataclass(slots=True)
class ToolDiff:
    name: str
    change: str  # added | removed | changed | unchanged
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    schema_changes: list[SchemaChange] = field(default_factory=list)


def _by_version(tools: Iterable[Located[ToolConfig]]) -> dict[str, dict[str, Located[ToolConfig]]]:
    found: dict[str, dict[str, Located[ToolConfig]]] = {}
    for item in tools:
        found.setdefault(item.value.name, {})[item.value.version] = item
    return found


def content(item: Located[ToolConfig]) -> tuple[Any, ...]:
    """What decides a version's behaviour: its fields (lifecycle ones aside) and its message texts."""
    fields = item.value.model_dump(mode="json", exclude=_LIFECYCLE_FIELDS | {"messages"})
    return (fields, tuple((m.role, ref.text) for m, ref in zip(item.value.messages, item.texts, strict=False)))


def _schema_changes(old: ToolConfig, new: ToolConfig) -> list[SchemaChange]:
    return (compare_schemas(old.input_schema, new.input_schema, direction="input", path="input_schema")
            + compare_schemas(old.output_schema, new.output_schema, direction="output", path="output_schema"))


def _describe(changes: list[SchemaChange]) -> str:
    return "; ".join(f"{c.path}: {c.message}" for c in changes)


def diff_configs(old: LoadedConfig | None, new: LoadedConfig) -> list[ToolDiff]:
    """One ToolDiff per tool name in either config, in the new config's order, removed ones last."""
    before = _by_version(old.tools) if old is not None else {}
    after = _by_version(new.tools)
    names = list(after) + [n for n in before if n not in after]
    return [_diff_tool(name, before.get(name, {}), after.get(name, {})) for name in names]


def _diff_tool(name: str, old: dict[str, Located[ToolConfig]], new: dict[str, Located[ToolConfig]]) -> ToolDiff:
    if not old:
        diff = ToolDiff(name, "added")
        diff.notes += [f"added {v} ({t.value.status})" for v, t in _newest_first(new)]
        return diff
    if not new:
        diff = ToolDiff(name, "removed")
        for version, item in _newest_first(old):
            status = item.value.status
            if status == "published":
                diff.problems.append(
                    f"'{name}' {version} is removed while published: callers would break without warning. "
                    "Deprecate it first (status: deprecated, with replacement and sunset), release that, "
                    "then retire it, then remove it.")
            else:
                diff.notes.append(f"removed {version} (was {status})")
        return diff
    diff = ToolDiff(name, "unchanged")
    for version, item in _newest_first(old):
        config = item.value
        if version in new:
            _same_version(diff, item, new[version])
            continue
        line = [(v, t) for v, t in _newest_first(new) if major(v) == major(version)]
        if line:
            successor_version, successor = line[0]
            diff.change = "changed"
            direction = "->" if version_key(successor_version) > version_key(version) else "-> (lower!)"
            diff.notes.append(f"version {version} {direction} {successor_version}")
            changes = _schema_changes(config, successor.value)
            diff.schema_changes += changes
            breaking = [c for c in changes if c.breaking]
            if breaking and config.status in ("published", "deprecated"):
                diff.problems.append(
                    f"'{name}' {version} -> {successor_version} is a breaking change without a major version "
                    f"bump ({_describe(breaking)}). Release it as {major(version) + 1}.0.0 (keeping "
                    f"{major(version)}.x beside it, deprecated, for the callers who need time), or make the "
                    "change compatible.")
            continue
        higher = [(v, t) for v, t in _newest_first(new) if major(v) > major(version)]
        diff.change = "changed"
        if higher:
            top_version, top = higher[-1]  # the next major line up
            changes = _schema_changes(config, top.value)
            diff.schema_changes += changes
            diff.notes.append(f"major version {version} -> {top_version}"
                              + (f" (breaking, allowed by the major bump: {_describe([c for c in changes if c.breaking])})"
                                 if any(c.breaking for c in changes) else ""))
            if config.status == "published":
                diff.notes.append(f"callers pinned to '{name}.v{major(version)}' lose it; keeping {version} "
                                  "beside the new major as deprecated gives them time")
        elif config.status == "published":
            diff.problems.append(
                f"'{name}' {version} is removed while published and no newer version replaces it. Deprecate it "
                "first, release that, then retire and remove it.")
        else:
            diff.notes.append(f"removed {version} (was {config.status})")
    for version, item in _newest_first(new):
        if version not in old and not any(major(v) == major(version) for v in old):
            diff.change = "changed"
            diff.notes.append(f"added {version} ({item.value.status})")
    return diff


def _same_version(diff: ToolDiff, old: Located[ToolConfig], new: Located[ToolConfig]) -> None:
    name, version = old.value.name, old.value.version
    before, after = old.value.status, new.value.status
    if before != after:
        diff.change = "changed"
        diff.notes.append(f"{version}: {before} -> {after}")
        if before == "published" and after == "retired":
            diff.problems.append(
                f"'{name}' {version} goes from published straight to retired: its callers get errors with no "
                "warning. Deprecate it first (status: deprecated, with replacement and sunset), then retire it.")
    if content(old) == content(new):
        return
    diff.change = "changed"
    changes = _schema_changes(old.value, new.value)
    diff.schema_changes += changes
    breaking = [c for c in changes if c.breaking]
    if breaking and before in ("published", "deprecated"):
        diff.problems.append(
            f"'{name}' {version} changed in a breaking way without a version change ({_describe(breaking)}). "
            f"Release it as {major(version) + 1}.0.0, or make the change compatible.")
    else:
        diff.notes.append(f"{version}: changed without a version change" + (
            " (prompt, model or schema; callers see it at once)" if before == "published" else ""))


def _newest_first(versions: dict[str, Located[ToolConfig]]) -> list[tuple[str, Located[ToolConfig]]]:
    return sorted(versions.items(), key=lambda kv: version_key(kv[0]), reverse=True)


def gate_versions(old: LoadedConfig | None, new: LoadedConfig) -> list[Located[ToolConfig]]:
    """Versions the eval gate must see tested: newly published ones, and published ones that changed."""
    before = _by_version(old.tools) if old is not None else {}
    chosen: list[Located[ToolConfig]] = []
    for item in new.tools:
        config = item.value
        if config.status != "published":
            continue
        previous = before.get(config.name, {}).get(config.version)
        if previous is None or previous.value.status != "published" or content(previous) != content(item):
            chosen.append(item)
    return chosen
