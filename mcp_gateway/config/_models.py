"""The config file format, as pydantic models.

These models are the single source of truth for the format: the loader validates against them and
`mcp-gateway schema` exports them as `schemas/gateway.schema.json`. Every model is frozen, forbids
unknown keys and is strict, so that a value YAML read as a number or boolean where text belongs
is reported instead of coerced.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ._ops import AuditConfig, AuthConfig, ChatApiConfig, ClusterConfig, ObservabilityConfig, RateLimitConfig

__all__ = [
    "FORMAT",
    "Annotations",
    "FanoutMerge",
    "BreakerConfig",
    "BudgetLimit",
    "BudgetsConfig",
    "ContextConfig",
    "FileText",
    "GatewayConfig",
    "Limits",
    "MessageTemplate",
    "OutputRepairConfig",
    "ModelConfig",
    "PriceConfig",
    "PromptArgument",
    "PromptConfig",
    "ProviderConfig",
    "ResourceConfig",
    "ResponseCacheConfig",
    "RetryConfig",
    "RouteStrategy",
    "ServerSettings",
    "SessionsConfig",
    "TargetConfig",
    "TestExpect",
    "TestingConfig",
    "TimeoutsConfig",
    "ToolCacheConfig",
    "ToolConfig",
    "ToolStatus",
    "ToolTest",
]

FORMAT = "mcp-gateway/1"

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
SEMVER_PATTERN = r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"

LABEL_PATTERN = r"^(?!v[0-9])[A-Za-z][A-Za-z0-9_-]{0,31}$"

ToolStatus = Literal["draft", "published", "deprecated", "retired"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ServerSettings(_Model):
    """How the gateway introduces itself to MCP clients."""

    name: str = Field("mcp-gateway", description="Server name reported in serverInfo.")
    version: str = Field("0.1.0", description="Server version reported in serverInfo.")
    title: str | None = Field(None, description="Human-readable server title.")
    instructions: str | None = Field(None, description="Instructions sent to clients on connect.")


class Limits(_Model):
    """Bounds that keep one request from exhausting the gateway."""

    max_argument_chars: int = Field(
        1_000_000, ge=1, description="Largest accepted tool-call arguments, as JSON characters."
    )
    max_rendered_chars: int = Field(
        200_000, ge=1, description="Largest rendered prompt (all messages of one call), in characters."
    )
    max_messages: int = Field(200, ge=1, description="Most messages one call may send (history included).")
    call_deadline_s: float | None = Field(
        300, gt=0, description="A tool call still running after this many seconds is cancelled with an error."
    )


class ProviderConfig(_Model):
    """A model provider. Secrets appear only as environment references such as ${env:OPENAI_API_KEY}."""

    kind: str = Field(description="Provider kind, e.g. 'mock' (built-in, offline).")
    base_url: str | None = Field(None, description="Base URL of the provider's HTTP API.")
    api_key: str | None = Field(None, description="API key; write it as ${env:VAR}, never inline.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers (values may use ${env:VAR}).")
    settings: dict[str, Any] = Field(default_factory=dict, description="Kind-specific settings.")


class TargetConfig(_Model):
    """One provider and model a route can send a call to."""

    provider: str = Field(description="Name of an entry under `providers`.")
    model: str = Field(description="The provider's model identifier.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Generation parameters for this target (over the alias' `params`)."
    )
    weight: float = Field(1.0, ge=0, description="strategy weighted: relative share of first tries (0: fallback only).")


class RetryConfig(_Model):
    """Retries of one target before moving on: exponential backoff with full jitter."""

    attempts: int = Field(3, ge=1, le=20, description="Tries per target, the first included (1: no retry).")
    base_delay_ms: float = Field(200, ge=0, description="Backoff base: try n waits up to base * 2^(n-1), at random.")
    max_delay_ms: float = Field(5000, ge=0, description="Cap of one backoff wait.")
    max_retry_after_s: float = Field(
        10, ge=0, description="A provider's Retry-After up to this is waited for; a longer one moves on to the next target."
    )


class TimeoutsConfig(_Model):
    """Deadlines the router enforces around each provider call (each try)."""

    first_token_s: float | None = Field(
        None, gt=0, description="The first byte of the answer must arrive within this many seconds: a streamed "
        "call's first piece of text, a whole call's answer."
    )
    total_s: float | None = Field(
        None, gt=0,
        description="The whole provider call must end within this many seconds (with strategy fanout: each target's timeout).",
    )


class BreakerConfig(_Model):
    """A circuit breaker per target: open after consecutive failures, probe once after a cooldown."""

    failures: int = Field(5, ge=1, description="Consecutive failures that open the circuit.")
    cooldown_s: float = Field(30, gt=0, description="How long an open circuit skips the target before one probe call.")


class OutputRepairConfig(_Model):
    """What happens when an answer fails the tool's `output_schema`: ask again, with the errors."""

    attempts: int = Field(
        1, ge=0, le=5,
        description="Further tries after an answer that fails the output schema (0: fail at once). Each "
        "try sends the conversation so far plus the validation errors, and is accounted like any call.",
    )
    target: Literal["same", "next"] = Field(
        "same",
        description="same: ask the target that gave the bad answer first; next: ask the route's other "
        "targets first (the one that answered last).",
    )


RouteStrategy = Literal["fallback", "weighted", "least_latency", "fanout"]
FanoutMerge = Literal["all", "first_valid"]


class ModelConfig(_Model):
    """A model alias that tools name: one provider and model, or a route over several `targets`.

    After validation `provider` and `model` always name the first (primary) target, and
    `all_targets()` lists every target, whichever form was written.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True,
        json_schema_extra={"oneOf": [{"required": ["provider", "model"]}, {"required": ["targets"]}]},
    )

    provider: str | None = Field(None, description="Name of an entry under `providers` (single-target form).")
    model: str | None = Field(None, description="The provider's model identifier (single-target form).")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Default generation parameters (temperature, max_tokens, ...); with `targets`, shared by all.",
    )
    targets: list[TargetConfig] | None = Field(
        None, min_length=1, description="Route form: the targets to try, instead of `provider` and `model`."
    )
    strategy: RouteStrategy = Field(
        "fallback",
        description="Order of targets: fallback (as listed), weighted (random by weight), least_latency "
        "(fastest observed first; targets never observed go first); or fanout: every target at once.",
    )
    merge: FanoutMerge | None = Field(
        None,
        description="strategy fanout: `all` (default) returns every target's answer; `first_valid` the first "
        "answer valid against the tool's output schema (the others are cancelled).",
    )
    retry: RetryConfig | None = Field(None, description="Retry a failing target before moving on (default: no retry).")
    timeouts: TimeoutsConfig | None = None
    breaker: BreakerConfig | None = Field(None, description="Skip a target that keeps failing (default: no breaker).")
    hedge_after_ms: float | None = Field(
        None, gt=0,
        description="Start the next target when the running one has produced nothing (no answer, no first token) "
        "after this long; the first answer wins and the other call is cancelled.",
    )
    output_repair: OutputRepairConfig | None = Field(
        None, description="Tools with an output_schema: retry an answer that fails it (default: one retry, "
        "same target first). A tool's own `output_repair` wins.",
    )

    @model_validator(mode="after")
    def _one_form(self) -> ModelConfig:
        if self.merge is not None and self.strategy != "fanout":
            raise ValueError("'merge' applies only to strategy 'fanout'")
        if self.strategy == "fanout" and self.hedge_after_ms is not None:
            raise ValueError("strategy 'fanout' already calls every target at once: drop 'hedge_after_ms'")
        if self.targets is not None:
            if self.provider is not None or self.model is not None:
                raise ValueError("give either 'provider' and 'model', or 'targets', not both")
            first = self.targets[0]
            return self.model_copy(update={"provider": first.provider, "model": first.model})
        missing = [name for name in ("provider", "model") if getattr(self, name) is None]
        if missing:
            raise ValueError(f"missing required field '{missing[0]}' (or give 'targets')")
        return self

    def all_targets(self) -> list[TargetConfig]:
        """Every target, in the order written; the single-target form as one target."""
        if self.targets is not None:
            return list(self.targets)
        assert self.provider is not None and self.model is not None
        return [TargetConfig(provider=self.provider, model=self.model)]

    def provider_refs(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(path inside this alias, provider name) of every provider the alias names, for reference checks."""
        if self.targets is not None:
            return [(("targets", i, "provider"), t.provider) for i, t in enumerate(self.targets)]
        assert self.provider is not None
        return [(("provider",), self.provider)]


class PriceConfig(_Model):
    """A model's price in USD per million tokens (overrides or extends the bundled price table)."""

    input: float = Field(ge=0, description="USD per million input tokens (not read from or written to a cache).")
    output: float = Field(ge=0, description="USD per million output tokens (reasoning tokens included).")
    cache_read: float | None = Field(None, ge=0, description="USD per million cached input tokens read (default: input).")
    cache_write: float | None = Field(
        None, ge=0, description="USD per million input tokens written to a cache (default: input)."
    )


class BudgetLimit(_Model):
    """A spending limit in USD, over the whole run or over a sliding window."""

    usd: float = Field(ge=0, description="Most USD that may be spent (reserved or settled).")
    window_s: float | None = Field(None, gt=0, description="Count only spending of the last this-many seconds.")


class BudgetsConfig(_Model):
    """Spending limits. A call first reserves its worst-case cost and is refused if that does not fit."""

    total: BudgetLimit | None = Field(None, description="All calls of this gateway process.")
    per_tool: dict[str, BudgetLimit] = Field(default_factory=dict, description="Per tool, by tool name.")
    per_session: BudgetLimit | None = Field(None, description="Each session on its own (calls in a session).")
    max_tokens: int = Field(
        4096, ge=1,
        description="Output cap for budgeted calls that set no max_tokens (sent to the provider, and used for the "
        "worst-case reservation).",
    )


class ResponseCacheConfig(_Model):
    """Where tools that opt in with `cache: {ttl_s}` keep answers."""

    store: Literal["memory", "redis"] = Field("memory", description="memory (default; a bounded LRU) or redis.")
    max_entries: int = Field(10_000, ge=1, description="memory: most answers kept (least recently used go first).")
    url: str | None = Field(None, description="redis: URL such as redis://127.0.0.1:6379/0 (may use ${env:VAR}).")
    prefix: str = Field("mcp-gateway:cache:", description="redis: key prefix.")


class ToolCacheConfig(_Model):
    """Opt a tool in to the response cache: identical calls within `ttl_s` get the stored answer."""

    ttl_s: float = Field(gt=0, description="How long an answer is reused, in seconds.")


class FileText(_Model):
    """Text kept in a file beside the config, relative to the file that names it."""

    file: str = Field(description="Path relative to the YAML file; must stay inside the config root.")


class MessageTemplate(_Model):
    """One prompt message. Each message is rendered on its own, so arguments can never add roles."""

    role: Literal["system", "user", "assistant"]
    content: str | FileText = Field(description="Jinja2 template (sandboxed) or {file: path}.")


class Annotations(_Model):
    """MCP tool annotations: hints for clients about a tool's behaviour."""

    read_only_hint: bool | None = None
    destructive_hint: bool | None = None
    idempotent_hint: bool | None = None
    open_world_hint: bool | None = None


class ContextConfig(_Model):
    """How much of its session a tool sees: the newest turns, within a token budget."""

    turns: int | None = Field(None, ge=1, description="At most this many of the newest turns.")
    max_tokens: int | None = Field(
        None, ge=1, description="At most this many tokens of history (estimated offline); oldest turns dropped first."
    )
    as_messages: bool = Field(
        True, description="Insert earlier turns as user/assistant messages before the tool's own (non-system) messages."
    )


class SessionsConfig(_Model):
    """Where sessions live and how long. Sessions carry conversation history and state between calls."""

    store: Literal["memory", "sqlite", "redis"] = Field("memory", description="memory (default), sqlite or redis.")
    path: str | None = Field(None, description="sqlite: database file, relative to the root config file.")
    url: str | None = Field(None, description="redis: URL such as redis://127.0.0.1:6379/0 (may use ${env:VAR}).")
    idle_ttl_s: float = Field(1800, gt=0, description="A session unused this long ends (reason: idle).")
    max_lifetime_s: float = Field(86400, gt=0, description="A session ends this long after it started.")
    retention_s: float = Field(7 * 86400, ge=0, description="Data of ended sessions is purged after this long.")
    builtin_tools: bool = Field(True, description="Serve session_start, session_end and session_state tools.")
    max_state_chars: int = Field(
        100_000, ge=1, description="Largest state of one session, as JSON characters; a session_state 'set' "
        "that would exceed it is refused."
    )


class TestExpect(_Model):
    """What a tool test expects of the answer; every check given must hold."""

    equals: str | None = Field(None, description="The answer text is exactly this.")
    contains: str | list[str] | None = Field(None, description="The answer text contains this (each of these).")
    regex: str | None = Field(None, description="The answer text matches this regular expression (re.search).")
    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="The structured answer is valid against this JSON Schema (2020-12).")
    json_path: dict[str, Any] | None = Field(
        None, description="JSONPath expression -> expected value, on the structured answer, e.g. {'$.urgency': high}.")
    max_cost_usd: float | None = Field(None, ge=0, description="The call cost at most this (USD; unknown cost fails).")
    max_latency_ms: float | None = Field(None, gt=0, description="The call took at most this long.")
    max_output_tokens: int | None = Field(None, ge=0, description="The answer used at most this many output tokens.")
    rubric: str | None = Field(
        None, min_length=1,
        description="Model-graded: the judge route (`testing.judge`) decides whether the answer meets this rubric.")


class ToolTest(_Model):
    """One test of a tool: call it with `args`, check the answer against `expect`."""

    name: str | None = Field(None, description="Shown in reports (default: the test's position).")
    args: dict[str, Any] = Field(default_factory=dict, description="The call's arguments (checked against input_schema).")
    expect: TestExpect = Field(default_factory=TestExpect, description="What the answer must satisfy.")


class TestingConfig(_Model):
    """How `mcp-gateway test` grades tools."""

    judge: str | None = Field(None, description="Model alias that grades `rubric` expectations.")


class ToolConfig(_Model):
    """A prompt tool: arguments in, rendered messages to a model, the answer out."""

    name: str = Field(pattern=NAME_PATTERN, description="Tool name: letters, digits, '_', '-', '.' (max 128).")
    title: str | None = Field(None, description="Human-readable title.")
    description: str = Field(min_length=1, description="What the tool does, for the model that calls it.")
    version: str = Field("1.0.0", pattern=SEMVER_PATTERN, description="Semantic version of this tool.")
    status: ToolStatus = Field(
        "published",
        description="draft: not served; published: served; deprecated: served with a notice; retired: gone.",
    )
    deprecation_note: str | None = Field(None, description="Shown with a deprecated tool, e.g. what replaces it.")
    replacement: str | None = Field(
        None, description="deprecated/retired: the tool (or pinned version, e.g. summarize.v2) callers should use.")
    deprecated_on: datetime.date | None = Field(
        None, strict=False,
        description="deprecated: the date it was deprecated (REST `Deprecation` header; default: when the "
        "gateway loaded the config).")
    sunset: datetime.date | None = Field(
        None, strict=False,
        description="deprecated: the date it will be retired; retired: the date it was (YYYY-MM-DD).")
    retention_days: int | None = Field(
        None, ge=0,
        description="retired: its stored data (session turns, cached answers) is disposed of this many days "
        "after `sunset`, once every version of the tool is retired.")
    labels: list[str] = Field(
        default_factory=list,
        description="Moving labels, e.g. [staging]: callers reach this version as '<name>.<label>', whatever its status.",
    )
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema (2020-12) of the arguments; must be an object schema.",
    )
    messages: list[MessageTemplate] = Field(min_length=1, description="Prompt messages, rendered in order.")
    model: str = Field(description="Name of an entry under `models`.")
    params: dict[str, Any] = Field(default_factory=dict, description="Generation parameters overriding the model's.")
    output_schema: dict[str, Any] | None = Field(
        None, description="JSON Schema of a structured answer (an object schema); returned as structuredContent."
    )
    output_repair: OutputRepairConfig | None = Field(
        None, description="An answer that fails output_schema is retried with the errors given back to the "
        "model (default: the model alias' setting, else one retry on the same target first).",
    )
    annotations: Annotations | None = None
    prompt: bool = Field(True, description="Also offer this tool's messages as an MCP prompt.")
    context: ContextConfig | None = Field(
        None, description="Opt in to session context: earlier turns and `session` in templates."
    )
    tags: list[str] = Field(default_factory=list, description="Free-form labels; the catalog page groups and filters by them.")
    owner: str | None = Field(None, description="Who answers questions about this tool (a person or an address).")
    team: str | None = Field(None, description="The team that owns this tool; the catalog page groups tools by it.")
    cache: ToolCacheConfig | None = Field(
        None, description="Reuse answers to identical calls (same messages, model, parameters) for `ttl_s` seconds."
    )
    tests: list[ToolTest] = Field(default_factory=list, description="Tests run by `mcp-gateway test`.")

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: list[str]) -> list[str]:
        for label in labels:
            if not re.match(LABEL_PATTERN, label):
                raise ValueError(
                    f"invalid label '{label}': letters, digits, '_' and '-', starting with a letter, at most 32; "
                    "'v' followed by a digit is reserved for version pins")
        if len(set(labels)) != len(labels):
            raise ValueError("a label is listed twice")
        return labels


class PromptArgument(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    required: bool = False


class PromptConfig(_Model):
    """A plain MCP prompt (messages for the client's own model; no provider is called)."""

    name: str = Field(pattern=NAME_PATTERN)
    title: str | None = None
    description: str | None = None
    arguments: list[PromptArgument] = Field(default_factory=list)
    messages: list[MessageTemplate] = Field(min_length=1)


class ResourceConfig(_Model):
    """An MCP resource: fixed (`uri`) or templated (`uri_template`, RFC 6570), text inline or from a file."""

    uri: str | None = Field(None, description="Fixed URI, e.g. docs://style-guide.")
    uri_template: str | None = Field(None, description="RFC 6570 template, e.g. glossary://{term}.")
    name: str = Field(min_length=1)
    title: str | None = None
    description: str | None = None
    mime_type: str = "text/plain"
    text: str | None = Field(None, description="Inline text (a Jinja2 template for uri_template resources).")
    file: str | None = Field(None, description="File with the text, relative to this YAML file.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ResourceConfig:
        if (self.uri is None) == (self.uri_template is None):
            raise ValueError("give exactly one of 'uri' and 'uri_template'")
        if (self.text is None) == (self.file is None):
            raise ValueError("give exactly one of 'text' and 'file'")
        return self


class GatewayConfig(_Model):
    """A gateway config file. The root file needs `format`; included files may omit it."""

    format: Literal["mcp-gateway/1"] | None = Field(None, description="Config format version.")
    server: ServerSettings | None = None
    limits: Limits | None = None
    sessions: SessionsConfig | None = None
    include: list[str] = Field(default_factory=list, description="More config files or globs, relative to this file.")
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    prices: dict[str, PriceConfig] | None = Field(
        None, description="Model prices (USD per million tokens) over the bundled table; key: model id "
        "or '<provider name>/<model id>'. Root config only."
    )
    budgets: BudgetsConfig | None = Field(None, description="Spending limits. Root config only.")
    response_cache: ResponseCacheConfig | None = Field(None, description="Response cache store. Root config only.")
    auth: AuthConfig | None = Field(None, description="Authentication of HTTP callers. Root config only.")
    rate_limits: RateLimitConfig | None = Field(None, description="Rate limits per caller and tool. Root config only.")
    audit: AuditConfig | None = Field(None, description="Append-only audit log. Root config only.")
    observability: ObservabilityConfig | None = Field(None, description="Metrics and logs. Root config only.")
    cluster: ClusterConfig | None = Field(
        None, description="Share budgets, usage, breakers and reloads between processes through Redis. Root config only."
    )
    chat_api: ChatApiConfig | None = Field(
        None, description="The OpenAI-format API (/v1/chat/completions, /v1/models). Root config only."
    )
    testing: TestingConfig | None = Field(None, description="How `mcp-gateway test` grades tools. Root config only.")
    partials: dict[str, str | FileText] = Field(
        default_factory=dict, description="Named template fragments, used as {% include 'name' %}."
    )
    tools: list[ToolConfig] = Field(default_factory=list)
    prompts: list[PromptConfig] = Field(default_factory=list)
    resources: list[ResourceConfig] = Field(default_factory=list)
