"""Security building blocks: API keys, JWTs, the SDK token verifier, scopes, rate and request limits,
redaction. Each module has one job; the server wires them together."""

from .auth import GatewayTokenVerifier, token_fingerprint
from .jwt import JWTError, JWTPrincipal, JWTSettings, JWTVerifier
from .keys import KeyRecord, KeyStore, KeyStoreError
from .limits import BodySizeLimitMiddleware, CallDeadlineError, RequestLimitError
from .ratelimit import (
    MemoryRateLimitBackend,
    RateLimiter,
    RateLimitExceeded,
    RateLimits,
    RateLimitUnavailable,
    RedisRateLimitBackend,
)
from .redact import RedactingFilter, Redactor
from .scopes import ScopeCache, ScopeSet

__all__ = [
    "BodySizeLimitMiddleware",
    "CallDeadlineError",
    "GatewayTokenVerifier",
    "JWTError",
    "JWTPrincipal",
    "JWTSettings",
    "JWTVerifier",
    "KeyRecord",
    "KeyStore",
    "KeyStoreError",
    "MemoryRateLimitBackend",
    "RateLimitExceeded",
    "RateLimitUnavailable",
    "RateLimiter",
    "RateLimits",
    "RedactingFilter",
    "Redactor",
    "RedisRateLimitBackend",
    "RequestLimitError",
    "ScopeCache",
    "ScopeSet",
    "token_fingerprint",
]
