"""Config models for running a gateway for a team: authentication, rate limits, audit, metrics."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AuditConfig", "AuthConfig", "ChatApiConfig", "ClusterConfig", "JwtConfig", "KeysRedisConfig",
    "ObservabilityConfig", "RateLimitConfig", "RateLimitValues",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class JwtConfig(_Model):
    """Bearer JWTs: HS256 with `secret`, or RS256/ES256 with `public_key_file` or a `jwks_file`."""

    secret: str | None = Field(None, description="HS256 shared secret; write it as ${env:VAR}.")
    public_key_file: str | None = Field(None, description="PEM public key file (RS256/ES256).")
    jwks_file: str | None = Field(None, description="JWKS file (keys chosen by 'kid'); re-read on an unknown kid.")
    issuer: str | None = Field(None, description="Required 'iss' claim.")
    audience: str | None = Field(None, description="Required 'aud' claim.")
    leeway_s: float = Field(30, ge=0, description="Clock skew allowed for exp/nbf/iat.")

    @model_validator(mode="after")
    def _one_key(self) -> JwtConfig:
        given = [k for k in ("secret", "public_key_file", "jwks_file") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of 'secret', 'public_key_file' and 'jwks_file'")
        return self


class KeysRedisConfig(_Model):
    """API keys in Redis, shared by every gateway process: a new or revoked key reaches all of them at once."""

    url: str = Field(description="Redis URL such as ${env:REDIS_URL} or redis://127.0.0.1:6379/0.")
    prefix: str = Field("mgw:keys:", description="Key prefix of the table, its version and change channel.")


class AuthConfig(_Model):
    """Who may call the HTTP transports. stdio stays keyless: the local user owns the process."""

    keys_file: str | None = Field(
        None, description="API key store (salted hashes only), managed with `mcp-gateway keys`; relative to the config."
    )
    keys_redis: KeysRedisConfig | None = Field(
        None, description="Keep API keys in Redis instead of `keys_file` (for several gateway processes)."
    )
    jwt: JwtConfig | None = None
    resource_url: str | None = Field(
        None, description="This gateway's public URL, announced in protected-resource metadata and 401 challenges."
    )

    @model_validator(mode="after")
    def _some_method(self) -> AuthConfig:
        if self.keys_file is None and self.keys_redis is None and self.jwt is None:
            raise ValueError("give 'keys_file' (or 'keys_redis'), 'jwt' or both")
        if self.keys_file is not None and self.keys_redis is not None:
            raise ValueError("give either 'keys_file' or 'keys_redis', not both")
        return self


class RateLimitValues(_Model):
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    max_concurrency: int | None = Field(None, ge=1)


class RateLimitConfig(_Model):
    """Limits per caller (a key's own limits win) and per tool; exact under concurrency."""

    store: Literal["memory", "redis"] = Field("memory", description="redis shares limits across gateway processes.")
    url: str | None = Field(None, description="redis: URL (may use ${env:VAR}).")
    per_key: RateLimitValues | None = Field(None, description="Default limits of each caller.")
    per_tool: dict[str, RateLimitValues] = Field(default_factory=dict, description="Limits of each tool, all callers.")
    lease_s: float = Field(
        30, gt=0, description="redis: a concurrency slot is a lease of this many seconds, renewed while its call runs; "
        "a crashed process holds its slots at most this long.",
    )


class AuditConfig(_Model):
    """Append-only record of who called what, when, with what outcome and cost."""

    path: str = Field(description="audit.jsonl (JSON lines) or audit.sqlite / .db (SQLite), relative to the config.")


class ObservabilityConfig(_Model):
    metrics: bool = Field(True, description="Serve Prometheus metrics at /metrics (HTTP transport).")
    json_logs: bool = Field(False, description="Log one JSON object per line on stderr, with request ids.")
    redact_fields: list[str] = Field(
        default_factory=list, description="More argument/field names whose values never appear in logs or audit."
    )


class ClusterConfig(_Model):
    """Several gateway processes acting as one: budgets, the usage ledger, breaker state and config
    reloads are shared through one Redis server. `store: redis` sections without a `url` use this one."""

    redis: str = Field(description="Redis URL such as redis://127.0.0.1:6379/0 (may use ${env:VAR}).")
    prefix: str = Field("mgw:", description="Prefix of every key and channel; one per cluster sharing a Redis.")
    timeout_ms: int = Field(
        1000, ge=10, le=60_000, description="Bound on each Redis operation: a slower Redis counts as down."
    )


class ChatApiConfig(_Model):
    """The OpenAI-format API over the model aliases: `POST /v1/chat/completions`, `GET /v1/models`."""

    enabled: bool = Field(True, description="Serve the OpenAI-format API on the HTTP transport.")
    direct_models: bool = Field(
        False, description="Also accept `model: <provider name>/<model id>`: a direct call to that provider's "
        "model, outside any alias (no fallback, retries or breaker)."
    )
    cache_ttl_s: float | None = Field(
        None, gt=0, description="Answer a repeated request from the response cache (`response_cache:`) for this "
        "many seconds; requests that offer tools or carry tool calls are never cached. Default: no caching."
    )
