"""A gateway: a loaded, compiled config with its router, ready to answer tool calls.

`load_gateway` runs every stage (load -> compile -> build providers) and raises one ConfigError
with all issues; `Gateway.call_tool` runs one call through validate -> render -> route -> result.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._errors import ConfigError, ConfigIssue, GatewayError, OutputError
from ._gc import collection_paused
from ._fanout import answer_value, fanout_output_schema, fanout_result, is_valid, returns_every_answer
from .catalog import Catalog, PromptTool, build_catalog
from .cluster import RedisLink, open_link, share
from .config import Limits, LoadedConfig, ServerSettings, read_config
from .providers import Completion, Message, OnText, Provider
from .routing import Route, Routed, Router, build_router, repair_policy
from .sessions import SessionManager, SessionRecord, Turn, build_sessions

__all__ = ["Gateway", "ToolAnswer", "build_gateway", "load_gateway", "render_in_session", "unique_issues"]

log = logging.getLogger("mcp_gateway.calls")


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """The outcome of one successful tool call; `routed` says which target answered, the attempts
    made, cost and cache use."""

    text: str
    structured: Any
    routed: Routed
    duration_ms: float
    tool: PromptTool  # the version that answered
    @property
    def completion(self) -> Completion:
        return self.routed.completion

    @property
    def route(self) -> Route:
        return self.routed.route

    def describe(self) -> dict[str, Any]:
        """How the answer was reached, as JSON: route, target, provider, model, finish reason,
        attempts, usage, cost_usd (cache, hedging when used), duration_ms. Every surface sends this."""
        info = self.routed.describe()
        info["duration_ms"] = round(self.duration_ms, 3)
        return info


@dataclass(frozen=True, slots=True)
class Gateway:
    settings: ServerSettings
    limits: Limits
    catalog: Catalog
    router: Router
    files: tuple[str, ...] = field(default=())
    sessions: SessionManager | None = None
    loaded: LoadedConfig | None = None  # what it was built from (operators' sections: auth, audit, ...)
    loaded_at: float = field(default_factory=time.time)  # when it was built (REST `Deprecation` default)
    cluster: RedisLink | None = None  # the Redis link shared with the other processes (`cluster:`)

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        *,
        on_text: OnText | None = None,
        session: SessionRecord | None = None,
        version: str | None = None,
        caller: str | None = None,
    ) -> ToolAnswer:
        """Run one call, in `session` when given (its history feeds the prompt; the turn is recorded);
        `caller` is the principal the usage ledger records the call under.

        `name` may pin a version or name a label (`summarize.v1`, `summarize.staging`), and `version`
        pins one as REST URLs do: the catalog resolves both. Raises ToolNotFoundError (ToolRetiredError),
        ArgumentError, RenderError, ProviderError, BudgetExceededError, OutputError, SessionError, or
        SessionStoreError.
        """
        tool = self.catalog.tools.resolve(name, version=version)
        return await self.call_version(tool, arguments, on_text=on_text, session=session, caller=caller)

    async def call_version(
        self,
        tool: PromptTool,
        arguments: Mapping[str, Any] | None,
        *,
        on_text: OnText | None = None,
        session: SessionRecord | None = None,
        model: str | None = None,
        caller: str | None = None,
    ) -> ToolAnswer:
        """Run one call of this exact tool version, whatever its status (the test runner tests drafts);
        `model` answers with another model alias than the tool's own; `caller` is the principal the
        usage ledger records the call under."""
        started = time.perf_counter()
        wall_started = time.time()
        name = tool.name
        args = tool.validate(arguments)
        config = tool.config
        history: list[Turn] = []
        if session is not None and config.context is not None and self.sessions is not None:
            history = await self.sessions.history(session.id, config.context)
        messages = render_in_session(tool, args, session_id=session.id if session else None,
                                     state=session.state if session else {}, history=history)
        if len(messages) > self.limits.max_messages:
            from .security.limits import check_message_count  # the security package loads the SDK

            check_message_count(len(messages), self.limits.max_messages)
        session_id = session.id if session is not None else None
        routed = await self.router.complete(
            model or config.model, messages, params=config.params, output_schema=config.output_schema,
            on_text=on_text, tool=name, session=session_id,
            cache_ttl_s=config.cache.ttl_s if config.cache is not None else None,
            accept=lambda completion: is_valid(tool, completion), caller=caller,
        )
        structured = None
        if returns_every_answer(routed.route):
            structured = fanout_result(tool, routed.answers)
        elif config.output_schema is not None:
            routed, structured = await self._checked(tool, routed, messages, on_text, session_id, caller)
        route, completion = routed.route, routed.completion
        text = json.dumps(structured, ensure_ascii=False) if structured is not None else completion.text
        if routed.cache == "miss":
            await self.router.remember(routed, tool=name)  # only an answer that passed the output checks
        if session is not None and self.sessions is not None:
            last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
            await self.sessions.record(session.id, Turn(
                tool=name, input=last_user, output=text, model=completion.model,
                started_at=wall_started, ended_at=time.time(),
                input_tokens=completion.usage.input_tokens, output_tokens=completion.usage.output_tokens,
            ))
        elapsed = (time.perf_counter() - started) * 1000
        if log.isEnabledFor(logging.INFO):  # what log.info asks first, before its arguments are built
            log.info(
                "tool=%s version=%s route=%s provider=%s model=%s input_tokens=%d output_tokens=%d ms=%.1f",
                name, config.version, route.name, routed.target.provider.name, completion.model,
                completion.usage.input_tokens, completion.usage.output_tokens, elapsed,
                extra={"gateway_call": {  # the same facts as data, for `mcp-gateway dev`'s live log
                    "tool": name, "route": route.name, "provider": routed.target.provider.name,
                    "model": completion.model, "input_tokens": completion.usage.input_tokens,
                    "output_tokens": completion.usage.output_tokens,
                    "cost_usd": routed.cost_usd, "cache": routed.cache, "ms": elapsed,
                    "session": session.id if session is not None else None}},
            )
        return ToolAnswer(text, structured, routed, elapsed, tool)

    async def _checked(self, tool: PromptTool, routed: Routed, messages: tuple[Message, ...],
                       on_text: OnText | None, session: str | None, caller: str | None) -> tuple[Routed, Any]:
        """The answer's structured value once it passes the output schema, repairing as the tool's
        (else the route's) `output_repair` allows: each repair is a routed call that sends the bad
        answer back with the validation errors. Errors carry every attempt in `call_meta`."""
        config = tool.config
        policy = repair_policy(config.output_repair) or routed.route.repair
        while True:
            try:
                return routed, answer_value(tool, routed.completion)
            except OutputError as exc:
                reason = "; ".join(str(v) for v in exc.violations)
                if routed.repairs >= policy.attempts:
                    exc.call_meta = {**replace(routed, attempts=routed.rejected(reason)).describe(),
                                     "error": {"kind": "output_invalid"}}
                    raise
                log.info("tool=%s: the answer fails the output schema (%d violations); repair %d of %d",
                         tool.name, len(exc.violations), routed.repairs + 1, policy.attempts)
                repair = (*messages, Message("assistant", routed.completion.text),
                          Message("user", _repair_prompt(exc)))
                label = routed.target.label
                try:
                    again = await self.router.complete(
                        config.model, repair, params=config.params, output_schema=config.output_schema,
                        on_text=on_text, tool=tool.name, session=session, caller=caller,
                        prefer=label if policy.target == "same" else None,
                        avoid=label if policy.target == "next" else None,
                    )
                except GatewayError as failed:  # the repair itself failed: report the whole call
                    failed.call_meta = _merged_failure(routed, reason, failed.call_meta)
                    raise
                routed = again.after(routed, reason)

    def output_schema_of(self, tool: PromptTool) -> Mapping[str, Any] | None:
        """The schema of `tool`'s structured answer on every surface: its own `output_schema`, or,
        when its route fans out with `merge: all`, the list of every target's answer (`_fanout`)."""
        if returns_every_answer(self.router.routes.get(tool.config.model)):
            return fanout_output_schema(tool.config.output_schema)
        return tool.config.output_schema

    async def warm_up(self) -> None:
        """Do the providers' one-time set-up now, in worker threads, instead of in the first call
        (servers start this as they begin serving)."""
        await self.router.warm_up()

    async def aclose(self) -> None:
        await self.router.aclose()
        if self.sessions is not None:
            await self.sessions.store.aclose()
        if self.cluster is not None:
            await self.cluster.aclose()


def render_in_session(
    tool: PromptTool, args: Mapping[str, Any], *, session_id: str | None, state: Mapping[str, Any],
    history: Sequence[Turn],
) -> tuple[Message, ...]:
    """A tool's messages for validated `args`; a tool with `context` sees `session` in its templates
    and, unless `as_messages: false`, gets the earlier turns as messages. Shared by calls and
    `mcp-gateway render`, so a preview is what a call would send."""
    config = tool.config
    if config.context is None:
        return tool.render(args)
    extra = {"session": {"id": session_id, "history": [t.to_dict() for t in history], "state": dict(state)}}
    messages = tool.render(args, extra=extra)
    if history and config.context.as_messages:
        messages = _with_history(messages, list(history))
    return messages


def _merged_failure(earlier: Routed, reason: str, meta: dict[str, Any] | None) -> dict[str, Any]:
    """A failed repair's `call_meta` with the rejected earlier answer's attempts, usage and cost."""
    before = replace(earlier, attempts=earlier.rejected(reason)).describe()
    if meta is None:
        return {**before, "output_repairs": earlier.repairs + 1}
    merged = dict(meta)
    merged["attempts"] = before["attempts"] + meta.get("attempts", 0)
    merged["usage"] = {k: v + meta.get("usage", {}).get(k, 0) for k, v in before["usage"].items()}
    costs = [before["cost_usd"], meta.get("cost_usd")]
    merged["cost_usd"] = None if None in costs else sum(c for c in costs if c is not None)
    unknown = before.get("cost_unknown_attempts", 0) + meta.get("cost_unknown_attempts", 0)
    if unknown:
        merged["cost_unknown_attempts"] = unknown
    merged["other_attempts"] = before.get("other_attempts", []) + meta.get("other_attempts", [])
    merged["output_repairs"] = earlier.repairs + 1
    return merged


def _repair_prompt(error: OutputError) -> str:
    lines = "\n".join(f"- {v}" for v in error.violations[:20])
    return ("Your answer does not match the required JSON schema:\n"
            f"{lines}\n"
            "Answer again with only the corrected JSON value, valid against the schema.")


def _with_history(messages: tuple[Message, ...], history: list[Turn]) -> tuple[Message, ...]:
    """Earlier turns as user/assistant pairs, after the leading system messages."""
    lead = 0
    while lead < len(messages) and messages[lead].role == "system":
        lead += 1
    earlier: list[Message] = []
    for turn in history:
        earlier += [Message("user", turn.input), Message("assistant", turn.output)]
    return (*messages[:lead], *earlier, *messages[lead:])


def load_gateway(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    every_route: bool = False,
    wrap_provider: Callable[[Provider], Provider] | None = None,
) -> Gateway:
    """Load and compile a config; raise ConfigError with every issue of every file.

    `every_route` builds every model alias' providers, not only the served tools' (for tests of
    drafts); `wrap_provider` wraps each provider (recording and replaying answers)."""
    gateway, _, issues = build_gateway(path, environ=environ, every_route=every_route, wrap_provider=wrap_provider)
    if gateway is None:
        raise ConfigError(issues)
    return gateway


def build_gateway(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    every_route: bool = False,
    wrap_provider: Callable[[Provider], Provider] | None = None,
) -> tuple[Gateway | None, LoadedConfig | None, list[ConfigIssue]]:
    """Run every stage (load -> compile -> build providers and sessions) and collect the issues of
    all of them, each once. The gateway is None when there is any issue; the loaded config is
    returned whenever the files could be read, for later stages (such as serving protections)."""
    with collection_paused():
        return _build_gateway(path, environ, every_route, wrap_provider)


def _build_gateway(
    path: str | Path, environ: Mapping[str, str] | None, every_route: bool,
    wrap_provider: Callable[[Provider], Provider] | None,
) -> tuple[Gateway | None, LoadedConfig | None, list[ConfigIssue]]:
    loaded, issues = read_config(path)
    if loaded is None:
        return None, None, issues
    catalog, catalog_issues = build_catalog(loaded)
    env = os.environ if environ is None else environ
    router, router_issues = build_router(loaded, env, every_route=every_route, wrap_provider=wrap_provider)
    sessions, session_issues = build_sessions(loaded, env)
    link, cluster_issues = open_link(loaded, env)
    issues = unique_issues(issues + catalog_issues + router_issues + session_issues + cluster_issues)
    if issues:
        return None, loaded, issues
    if link is not None:
        share(router, link)
    gateway = Gateway(loaded.server, loaded.limits, catalog, router, tuple(loaded.files), sessions, loaded,
                      cluster=link)
    return gateway, loaded, []


def unique_issues(issues: Sequence[ConfigIssue]) -> list[ConfigIssue]:
    """Each problem once (stages can see the same one), in file and position order."""
    seen: dict[tuple[str, int, int, str], ConfigIssue] = {}
    for issue in issues:
        seen.setdefault((issue.file, issue.line, issue.column, issue.message), issue)
    return list(seen.values())
