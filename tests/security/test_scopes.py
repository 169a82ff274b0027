"""Scopes: exact names, globs, per-kind isolation, sessions, filters and the compiled-set cache."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mcp_gateway.security.scopes import (
    ScopeCache,
    ScopeSet,
    can_access_session,
    can_get_prompt,
    can_read_resource,
    can_use_tool,
    filter_prompts,
    filter_resources,
    filter_tools,
    invalid_scopes,
)


@dataclass
class Named:
    name: str


@dataclass
class Res:
    uri: str


@pytest.mark.parametrize(("scopes", "tool", "allowed"), [
    (["tools:summarize"], "summarize", True),
    (["tools:summarize"], "summarize2", False),
    (["tools:summarize"], "Summarize", False),  # case-sensitive
    (["tools:translate*"], "translate_fr", True),
    (["tools:translate*"], "translate", True),
    (["tools:translate*"], "retranslate", False),
    (["tools:*"], "anything/at_all", True),
    (["tools:tr?"], "try", True),
    (["tools:[ab]x"], "ax", True),
    (["prompts:*", "resources:*"], "summarize", False),  # other kinds grant no tools
    ([], "summarize", False),
    (["tools:"], "", False),
    (["summarize"], "summarize", False),  # no kind: grants nothing
])
def test_tools(scopes: list[str], tool: str, allowed: bool) -> None:
    assert can_use_tool(scopes, tool) is allowed


def test_prompts_and_resources() -> None:
    scopes = ["prompts:review_*", "resources:docs://*", "resources:file:///etc/motd"]
    assert can_get_prompt(scopes, "review_code") and not can_get_prompt(scopes, "summarize")
    assert can_read_resource(scopes, "docs://guide/intro.md")
    assert can_read_resource(scopes, "file:///etc/motd")
    assert not can_read_resource(scopes, "file:///etc/passwd")
    assert not can_read_resource(scopes, "docs:/x")
    assert not can_use_tool(scopes, "review_code")


def test_sessions() -> None:
    assert can_access_session(["sessions:own"], owner="key:a", principal="key:a")
    assert not can_access_session(["sessions:own"], owner="key:b", principal="key:a")
    assert not can_access_session(["sessions:own"], owner=None, principal=None)
    assert can_access_session(["sessions:*"], owner="key:b", principal="key:a")
    assert can_access_session(["sessions:all"], owner="key:b", principal="key:a")
    assert not can_access_session(["sessions:o*"], owner="key:a", principal="key:a")  # no globs here
    assert not can_access_session(["tools:*"], owner="key:a", principal="key:a")


def test_filters_keep_order() -> None:
    scopes = ScopeSet.of(["tools:a*", "prompts:p1", "resources:docs://*"])
    tools = [Named("b"), Named("a2"), Named("a1")]
    assert filter_tools(scopes, tools) == [Named("a2"), Named("a1")]
    assert filter_prompts(scopes, [Named("p1"), Named("p2")]) == [Named("p1")]
    assert filter_resources(scopes, [Res("docs://x"), Res("web://y")]) == [Res("docs://x")]
    assert filter_tools(scopes, ["a", "b"], key=lambda s: s) == ["a"]


def test_cache_returns_the_compiled_set_for_equal_scope_sets() -> None:
    cache = ScopeCache(maxsize=2)
    first = cache.get(["tools:a", "tools:b*"])
    assert cache.get(("tools:b*", "tools:a", "tools:a")) is first
    cache.get(["x:1"])
    cache.get(["x:2"])  # evicts the oldest
    assert cache.get(["tools:a", "tools:b*"]) is not first
    assert first.allows_tool("bee")


def test_invalid_scopes() -> None:
    assert invalid_scopes(["tools:*", "sessions:own", "sessions:mine", "tool:x", "prompts:", "nokind"]) == [
        "sessions:mine", "tool:x", "prompts:", "nokind"]
