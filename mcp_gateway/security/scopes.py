"""Authorization: which tools, prompts, resources, model aliases and sessions a principal's scopes allow.

A scope is `<kind>:<pattern>`:

    tools:summarize         one tool                prompts:*             every prompt
    tools:translate*        a glob (fnmatch, case-sensitive; `*` also matches `/`)
    tools:*                 every tool              resources:docs://*    resources under docs://
    sessions:own            the caller's own sessions     sessions:*     everyone's sessions (admin)
    metrics                 read /metrics over HTTP (a plain scope, no pattern)
    models:fast             a model alias (or `provider/model`) for /v1/chat/completions; globs too

Unknown kinds and malformed scopes grant nothing (`invalid_scopes` finds them for config checks).
Scopes are compiled once per distinct scope set (exact names in a set, globs in one regex per kind);
`ScopeCache` keeps the compiled sets, so the per-request cost is a dict lookup plus a set lookup or
one regex match.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, TypeVar

__all__ = [
    "KINDS",
    "ScopeCache",
    "ScopeSet",
    "can_access_session",
    "can_get_prompt",
    "can_read_resource",
    "can_use_tool",
    "filter_prompts",
    "filter_resources",
    "filter_tools",
    "invalid_scopes",
]

Kind = Literal["tools", "prompts", "resources", "models", "sessions"]
KINDS: tuple[Kind, ...] = ("tools", "prompts", "resources", "models", "sessions")
_GLOB_CHARS = frozenset("*?[")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Matcher:
    """The patterns of one kind: exact names, plus one compiled alternation of the globs."""

    exact: frozenset[str]
    glob: re.Pattern[str] | None

    def __call__(self, name: str) -> bool:
        return name in self.exact or (self.glob is not None and self.glob.match(name) is not None)


_NOTHING = _Matcher(frozenset(), None)


def _compile(patterns: list[str]) -> _Matcher:
    exact = frozenset(p for p in patterns if not (_GLOB_CHARS & set(p)))
    globs = [fnmatch.translate(p) for p in patterns if _GLOB_CHARS & set(p)]
    return _Matcher(exact, re.compile("|".join(f"(?:{g})" for g in globs)) if globs else None)


@dataclass(frozen=True, slots=True)
class ScopeSet:
    """A principal's scopes, compiled; immutable and safe to share between requests."""

    scopes: frozenset[str]
    tools: _Matcher
    prompts: _Matcher
    resources: _Matcher
    sessions: _Matcher
    models: _Matcher = _NOTHING

    @classmethod
    def of(cls, scopes: Iterable[str]) -> ScopeSet:
        by_kind: dict[str, list[str]] = {kind: [] for kind in KINDS}
        frozen = frozenset(scopes)
        for scope in frozen:
            kind, sep, pattern = scope.partition(":")
            if sep and pattern and kind in by_kind:
                by_kind[kind].append(pattern)
        matchers = {kind: _compile(patterns) if patterns else _NOTHING for kind, patterns in by_kind.items()}
        matchers["sessions"] = _Matcher(frozenset(by_kind["sessions"]), None)  # literal values, never globs
        return cls(frozen, matchers["tools"], matchers["prompts"], matchers["resources"],
                   matchers["sessions"], matchers["models"])

    def allows_tool(self, name: str) -> bool:
        return self.tools(name)

    def allows_prompt(self, name: str) -> bool:
        return self.prompts(name)

    def allows_resource(self, uri: str) -> bool:
        return self.resources(uri)

    def allows_model(self, name: str) -> bool:
        return self.models(name)

    def allows_session(self, owner: str | None, principal: str | None) -> bool:
        """`sessions:*` (or `sessions:all`) reaches every session, `sessions:own` the caller's own."""
        if self.sessions.exact & {"*", "all"}:
            return True
        return "own" in self.sessions.exact and owner is not None and owner == principal


class ScopeCache:
    """Compiled `ScopeSet`s by scope set: a bounded, thread-safe LRU owned by the server."""

    def __init__(self, maxsize: int = 1024) -> None:
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._items: OrderedDict[frozenset[str], ScopeSet] = OrderedDict()

    def get(self, scopes: Iterable[str]) -> ScopeSet:
        key = scopes if isinstance(scopes, frozenset) else frozenset(scopes)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        compiled = ScopeSet.of(key)
        with self._lock:
            self._items[key] = compiled
            while len(self._items) > self._maxsize:
                self._items.popitem(last=False)
        return compiled


def _as_set(scopes: ScopeSet | Iterable[str]) -> ScopeSet:
    return scopes if isinstance(scopes, ScopeSet) else ScopeSet.of(scopes)


def can_use_tool(scopes: ScopeSet | Iterable[str], name: str) -> bool:
    """Pass a `ScopeSet` (from a `ScopeCache`) on the hot path; raw strings are compiled each call."""
    return _as_set(scopes).allows_tool(name)


def can_get_prompt(scopes: ScopeSet | Iterable[str], name: str) -> bool:
    return _as_set(scopes).allows_prompt(name)


def can_read_resource(scopes: ScopeSet | Iterable[str], uri: str) -> bool:
    return _as_set(scopes).allows_resource(uri)


def can_access_session(scopes: ScopeSet | Iterable[str], owner: str | None, principal: str | None) -> bool:
    return _as_set(scopes).allows_session(owner, principal)


def _filter(items: Iterable[T], allowed: Callable[[str], bool], key: Callable[[T], str]) -> list[T]:
    return [item for item in items if allowed(key(item))]


def filter_tools(scopes: ScopeSet | Iterable[str], items: Iterable[T],
                 key: Callable[[T], str] = lambda item: item.name) -> list[T]:  # type: ignore[attr-defined]
    """The items (e.g. `mcp.types.Tool`) whose name the scopes allow, in their order."""
    return _filter(items, _as_set(scopes).allows_tool, key)


def filter_prompts(scopes: ScopeSet | Iterable[str], items: Iterable[T],
                   key: Callable[[T], str] = lambda item: item.name) -> list[T]:  # type: ignore[attr-defined]
    return _filter(items, _as_set(scopes).allows_prompt, key)


def filter_resources(scopes: ScopeSet | Iterable[str], items: Iterable[T],
                     key: Callable[[T], str] = lambda item: str(item.uri)) -> list[T]:  # type: ignore[attr-defined]
    return _filter(items, _as_set(scopes).allows_resource, key)


def invalid_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes that grant nothing (unknown kind, empty pattern, bad `sessions:` value)."""
    bad = []
    for scope in scopes:
        if scope == "metrics":
            continue
        kind, sep, pattern = scope.partition(":")
        unknown = not sep or not pattern or kind not in KINDS
        if unknown or (kind == "sessions" and pattern not in ("own", "*", "all")):
            bad.append(scope)
    return bad
