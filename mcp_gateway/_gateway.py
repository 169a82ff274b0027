"""A gateway: a loaded, compiled config with its router, ready to answer tool calls.

`load_gateway` runs every stage (load -> compile -> build providers) and raises one ConfigError
with all issues; `Gateway.call_tool` runs one call through validate -> render -> route -> result.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ConfigError, OutputError, Violation
from .catalog import Catalog, build_catalog
from .cluster import RedisLink, open_link, share
from .config import Limits, LoadedConfig, ServerSettings, load_config
from .providers import Completion, Message, OnText
from .routing import Route, Routed, Router, build_router
from .security.limits import check_message_count
from .sessions import SessionManager, SessionRecord, Turn, build_sessions

__all__ = ["Gateway", "ToolAnswer", "load_gateway"]

log = logging.getLogger("mcp_gateway.calls")


@dataclass(frozen=True, slots=True)
class ToolAnswer:
    """The outcome of one successful tool call; `routed` says which target answered, the attempts
    made, cost and cache use."""

    text: str
    structured: Any
    routed: Routed
    duration_ms: float

    @property
    def completion(self) -> Completion:
        return self.routed.completion

    @property
    def route(self) -> Route:
        return self.routed.route


@dataclass(frozen=True, slots=True)
class Gateway:
    settings: ServerSettings
    limits: Limits
    catalog: Catalog
    router: Router
    files: tuple[str, ...] = field(default=())
    sessions: SessionManager | None = None
    loaded: LoadedConfig | None = None  # what it was built from (operators' sections: auth, audit, ...)
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

        `version` pins the tool's version (ToolNotFoundError when it is not served).
        Raises ToolNotFoundError, ArgumentError, RenderError, ProviderError, BudgetExceededError,
        OutputError, SessionError, or SessionStoreError.
        """
        started = time.perf_counter()
        wall_started = time.time()
        tool = self.catalog.tools.get(name, version=version)
        args = tool.validate(arguments)
        config = tool.config
        history: list[Turn] = []
        if session is not None and config.context is not None and self.sessions is not None:
            history = await self.sessions.history(session.id, config.context)
        extra = None
        if config.context is not None:
            extra = {"session": {
                "id": session.id if session else None,
                "history": [t.to_dict() for t in history],
                "state": dict(session.state) if session else {},
            }}
        messages = tool.render(args, extra=extra)
        if history and config.context is not None and config.context.as_messages:
            messages = _with_history(messages, history)
        check_message_count(len(messages), self.limits.max_messages)
        routed = await self.router.complete(
            config.model, messages, params=config.params, output_schema=config.output_schema, on_text=on_text,
            tool=name, session=session.id if session is not None else None,
            cache_ttl_s=config.cache.ttl_s if config.cache is not None else None, caller=caller,
        )
        route, completion = routed.route, routed.completion
        structured = None
        if config.output_schema is not None:
            structured = completion.structured
            if structured is None:
                try:
                    structured = json.loads(completion.text)
                except ValueError:
                    raise OutputError(name, [Violation("$", "the model did not answer with JSON")]) from None
            tool.check_output(structured)
        text = json.dumps(structured, ensure_ascii=False) if structured is not None else completion.text
        if routed.cache == "miss":
            await self.router.remember(routed)  # only an answer that passed the output checks
        if session is not None and self.sessions is not None:
            last_user = next((m.content for m in reversed(messages) if m.role == "user"), "")
            await self.sessions.record(session.id, Turn(
                tool=name, input=last_user, output=text, model=completion.model,
                started_at=wall_started, ended_at=time.time(),
                input_tokens=completion.usage.input_tokens, output_tokens=completion.usage.output_tokens,
            ))
        elapsed = (time.perf_counter() - started) * 1000
        log.info(
            "tool=%s version=%s route=%s provider=%s model=%s input_tokens=%d output_tokens=%d ms=%.1f",
            name, config.version, route.name, routed.target.provider.name, completion.model,
            completion.usage.input_tokens, completion.usage.output_tokens, elapsed,
        )
        return ToolAnswer(text, structured, routed, elapsed)

    async def aclose(self) -> None:
        await self.router.aclose()
        if self.sessions is not None:
            await self.sessions.store.aclose()
        if self.cluster is not None:
            await self.cluster.aclose()


def _with_history(messages: tuple[Message, ...], history: list[Turn]) -> tuple[Message, ...]:
    """Earlier turns as user/assistant pairs, after the leading system messages."""
    lead = 0
    while lead < len(messages) and messages[lead].role == "system":
        lead += 1
    earlier: list[Message] = []
    for turn in history:
        earlier += [Message("user", turn.input), Message("assistant", turn.output)]
    return (*messages[:lead], *earlier, *messages[lead:])


def load_gateway(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Gateway:
    """Load and compile a config; raise ConfigError with every issue of every file."""
    loaded = load_config(path)
    catalog, issues = build_catalog(loaded)
    env = os.environ if environ is None else environ
    router, router_issues = build_router(loaded, env)
    sessions, session_issues = build_sessions(loaded, env)
    link, cluster_issues = open_link(loaded, env)
    if issues or router_issues or session_issues or cluster_issues:
        raise ConfigError(issues + router_issues + session_issues + cluster_issues)
    if link is not None:
        share(router, link)
    return Gateway(loaded.server, loaded.limits, catalog, router, tuple(loaded.files), sessions, loaded, link)
