"""What stands between a caller and a tool when a gateway is shared: who is calling (auth), what
they may use (scopes), how much (rate limits, deadlines), and what gets recorded (metrics, audit).

Built once per served process from the config; auth, limits and audit settings take effect on a
restart (a reload swaps tools, not these).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token

from .._errors import ConfigError, ConfigIssue
from ..config import ENV_REF, LoadedConfig, RateLimitValues, resolve_env
from ..observability.audit import AuditEvent, AuditLog, JsonlAuditSink, SqliteAuditSink
from ..observability.logs import request_id_var
from ..observability.metrics import GatewayMetrics
from ..security import (
    GatewayTokenVerifier,
    JWTSettings,
    JWTVerifier,
    KeyStore,
    KeyStoreError,
    MemoryRateLimitBackend,
    RateLimiter,
    RateLimitExceeded,
    RateLimits,
    Redactor,
    RedisRateLimitBackend,
    ScopeCache,
    ScopeSet,
)
from ..security.ratelimit import Permit

__all__ = ["Caller", "CallRecord", "Protections", "audit_path", "audit_sink", "build_protections", "key_store"]

log = logging.getLogger("mcp_gateway.protections")

_EVERYTHING = ("tools:*", "prompts:*", "resources:*", "models:*", "sessions:own")


@dataclass(frozen=True, slots=True)
class Caller:
    """The principal of a request and what it may do."""

    principal: str
    scopes: ScopeSet
    limits: RateLimits | None


@dataclass(slots=True)
class CallRecord:
    """Filled in by the handler during a call, read when the call is recorded."""

    outcome: str = "ok"
    error_kind: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    session_id: str | None = None
    call: dict[str, Any] | None = None  # routing facts of a failed call (GatewayError.call_meta)
    version: str | None = None  # the tool version that answered
    status: str | None = None  # its lifecycle status then (deprecated calls are reported by `usage`)


@dataclass(slots=True)
class Protections:
    verifier: GatewayTokenVerifier | None = None
    keys: KeyStore | None = None
    limiter: RateLimiter | None = None
    default_limits: RateLimits | None = None
    tool_limits: Mapping[str, RateLimits] = field(default_factory=dict)
    call_deadline_s: float | None = None
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    audit: AuditLog | None = None
    redactor: Redactor = field(default_factory=Redactor)
    resource_url: str | None = None
    metrics_enabled: bool = True
    _scopes: ScopeCache = field(default_factory=ScopeCache)
    _everything: ScopeSet | None = None

    @property
    def auth_required(self) -> bool:
        return self.verifier is not None

    def caller(self) -> Caller:
        """Who is calling. Without authentication (stdio, or HTTP without `auth:`) the caller may do
        everything, as the local user who started the process."""
        token = get_access_token()
        if token is None:
            if self._everything is None:
                self._everything = self._scopes.get(_EVERYTHING)
            return Caller("anonymous", self._everything, self.default_limits)
        limits = self.default_limits
        if self.keys is not None and token.client_id.startswith("key:"):
            record = self.keys.get(token.client_id[4:])
            if record is not None and record.limits is not None:
                limits = record.limits
        return Caller(token.client_id, self._scopes.get(tuple(token.scopes)), limits)

    def admit(self, caller: Caller, tool: str, record: CallRecord, *, estimated_tokens: int) -> _Admission:
        """`async with` it to hold a rate-limit permit for one call (settle it with the tokens used);
        a refusal raises RateLimitExceeded, counted in the metrics and marked on `record`."""
        assert self.limiter is not None
        permit = self.limiter.limit(caller.principal, caller.limits, tool=tool,
                                    tool_limits=self.tool_limits.get(tool), tokens=estimated_tokens)
        return _Admission(self, permit, record, tool)

    def record_call(self, caller: Caller, method: str, target: str | None, record: CallRecord,
                    seconds: float) -> None:
        """Metrics and an audit event for one finished (or refused) request."""
        self.metrics.request(method, target, record.outcome, seconds, record.error_kind)
        if self.audit is not None:
            self.audit.record_nowait(AuditEvent(
                principal=caller.principal, method=method, target=target, outcome=record.outcome,
                error_kind=record.error_kind, duration_ms=round(seconds * 1000, 3),
                input_tokens=record.input_tokens, output_tokens=record.output_tokens,
                cost_usd=record.cost_usd, request_id=request_id_var.get(), session_id=record.session_id,
                call=record.call, version=record.version, status=record.status))

    def refused(self, caller: Caller, method: str, target: str | None) -> None:
        """Record a request refused for being outside the caller's scopes."""
        self.record_call(caller, method, target, CallRecord(outcome="error", error_kind="out_of_scope"), 0.0)

    async def aclose(self) -> None:
        if self.keys is not None:
            self.keys.close()
        if self.audit is not None:
            await self.audit.aclose()
        if self.limiter is not None:
            await self.limiter.aclose()


class _Admission:
    """The permit of one call, and what a refusal leaves on its record (a class, not a generator
    context manager: it runs on every call)."""

    __slots__ = ("_guard", "_permit", "_record", "_tool")

    def __init__(self, guard: Protections, permit: Permit, record: CallRecord, tool: str) -> None:
        self._guard = guard
        self._permit = permit
        self._record = record
        self._tool = tool

    async def __aenter__(self) -> Permit:
        try:
            return await self._permit.__aenter__()
        except RateLimitExceeded as exc:
            self._refused(exc)
            raise

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._permit.__aexit__(exc_type, exc, tb)
        if isinstance(exc, RateLimitExceeded):
            self._refused(exc)

    def _refused(self, exc: RateLimitExceeded) -> None:
        record = self._record
        if record.outcome == "ok":
            record.outcome, record.error_kind = "error", "rate_limit"
            self._guard.metrics.rate_limited(exc.scope, exc.limit, self._tool)


def _limits(values: RateLimitValues | None) -> RateLimits | None:
    if values is None:
        return None
    return RateLimits(values.requests_per_minute, values.tokens_per_minute, values.max_concurrency)


def build_protections(loaded: LoadedConfig, environ: Mapping[str, str] | None = None) -> Protections:
    """Protections for a served config; raises ConfigError naming what is wrong."""
    env = os.environ if environ is None else environ
    issues: list[ConfigIssue] = []
    root = loaded.root

    def resolve(value: str | None, origin: Any, sub: tuple[str, ...]) -> str | None:
        if value is None:
            return None
        resolved, missing = resolve_env(value, env)
        if resolved is None:
            issues.append(origin.issue(sub, f"environment variable {missing} is not set"))
        return resolved

    protections = Protections()
    secrets: list[str] = []  # the values of every ${env:...} the config uses
    for name in sorted(set(ENV_REF.findall(_config_text(loaded)))):
        if name in env and len(env[name]) >= 8:
            secrets.append(env[name])
    obs = loaded.observability.value if loaded.observability else None
    protections.redactor = Redactor(secrets, fields=_fields(obs.redact_fields if obs else []))
    protections.metrics_enabled = obs.metrics if obs else True
    protections.call_deadline_s = loaded.limits.call_deadline_s

    if loaded.auth is not None:
        auth, origin = loaded.auth.value, loaded.auth.origin
        keys = None
        try:
            keys = key_store(loaded, env)
        except ConfigError as exc:
            issues += exc.issues
        jwt = None
        if auth.jwt is not None:
            cfg = auth.jwt
            secret = resolve(cfg.secret, origin, ("jwt", "secret"))
            pem = None
            if cfg.public_key_file:
                try:
                    pem = (root / cfg.public_key_file).read_text()
                except OSError as exc:
                    issues.append(origin.issue(("jwt", "public_key_file"), f"cannot read: {exc.strerror}"))
            which = "secret" if cfg.secret else "public_key_file" if cfg.public_key_file else "jwks_file"
            try:
                jwt = JWTVerifier(JWTSettings(
                    secret=secret, public_key_pem=pem,
                    jwks_file=(root / cfg.jwks_file) if cfg.jwks_file else None,
                    issuer=cfg.issuer, audience=cfg.audience, leeway=cfg.leeway_s))
            except ValueError as exc:  # too short a secret, an unusable key or key set; never shows the secret
                if secret is not None or pem is not None or cfg.jwks_file:
                    issues.append(origin.issue(("jwt", which), str(exc)))
        protections.keys = keys
        protections.resource_url = auth.resource_url
        if keys is not None or jwt is not None:
            protections.verifier = GatewayTokenVerifier(
                keys=keys, jwt=jwt, resource=auth.resource_url,
                on_reject=lambda kind, _why: protections.metrics.auth_failed(kind))

    if loaded.rate_limits is not None:
        rl, origin = loaded.rate_limits.value, loaded.rate_limits.origin
        protections.default_limits = _limits(rl.per_key)
        protections.tool_limits = {name: lim for name, v in rl.per_tool.items() if (lim := _limits(v))}
        if rl.store == "redis":
            url = resolve(rl.url, origin, ("url",))
            if rl.url is None:
                issues.append(origin.issue(("url",), "the redis store needs 'url'"))
            backend: Any = RedisRateLimitBackend.from_url(url) if url else MemoryRateLimitBackend()
        else:
            backend = MemoryRateLimitBackend()
        protections.limiter = RateLimiter(backend, lease_ttl=rl.lease_s)

    if loaded.audit is not None:
        try:
            sink: Any = audit_sink(loaded)
        except (OSError, sqlite3.Error) as exc:
            issues.append(loaded.audit.origin.issue(("path",), f"cannot open the audit log: {exc}"))
        else:
            protections.audit = AuditLog(sink, redactor=protections.redactor)
    if issues:
        raise ConfigError(issues)
    return protections


def key_store(loaded: LoadedConfig, environ: Mapping[str, str]) -> KeyStore | None:
    """The API key store a config names (`auth.keys_file` or `auth.keys_redis`), for the server and
    `mcp-gateway keys`; ConfigError (located) when it cannot be used."""
    if loaded.auth is None:
        return None
    auth, origin = loaded.auth.value, loaded.auth.origin
    try:
        if auth.keys_file:
            return KeyStore(loaded.root / auth.keys_file)
        if auth.keys_redis:
            from ..security._keys_redis import RedisKeyBackend

            url, missing = resolve_env(auth.keys_redis.url, environ)
            if url is None:
                raise ConfigError([origin.issue(("keys_redis", "url"), f"environment variable {missing} is not set")])
            return KeyStore(backend=RedisKeyBackend(url, prefix=auth.keys_redis.prefix))
    except KeyStoreError as exc:
        where = ("keys_file",) if auth.keys_file else ("keys_redis",)
        raise ConfigError([origin.issue(where, str(exc))]) from None
    except ValueError as exc:  # redis-py refuses the URL
        raise ConfigError([origin.issue(("keys_redis", "url"), f"not a usable Redis URL: {exc}")]) from None
    return None


def audit_path(loaded: LoadedConfig) -> Path | None:
    """The audit log file a config names (relative to its root), or None."""
    return Path(loaded.root / loaded.audit.value.path) if loaded.audit is not None else None


def audit_sink(loaded: LoadedConfig) -> Any:
    """The sink of a config's audit log: SQLite for .sqlite/.db/.sqlite3 files, JSON lines otherwise."""
    path = audit_path(loaded)
    assert path is not None
    return SqliteAuditSink(path) if path.suffix in (".sqlite", ".db", ".sqlite3") else JsonlAuditSink(path)


def _fields(extra: list[str]) -> Any:
    from ..security.redact import DEFAULT_SECRET_FIELDS

    return tuple(DEFAULT_SECRET_FIELDS) + tuple(extra)


def _config_text(loaded: LoadedConfig) -> str:
    """Every config file's text: the ${env:...} names it uses are the secrets to redact."""
    texts = []
    for name in loaded.files:
        try:
            texts.append(Path(name).read_text(encoding="utf-8"))
        except OSError:
            pass
    return "\n".join(texts)
