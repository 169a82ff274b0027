"""The SDK `TokenVerifier` of the gateway: a bearer token is an API key or a JWT, told apart by shape.

`mgw_...` goes to the `KeyStore`: `lookup()` settles most tokens without scrypt (cache, unknown or
revoked id, a keyed check that does not match); the rest run scrypt in a worker thread, once per
distinct token however many requests present it at the same time (`SingleFlight`). A
three-segment base64url string goes to the `JWTVerifier`; anything else is refused without work.

The SDK's `AccessToken` has a `token` field. The SDK's resource-server path never reads it (bearer
auth logs only `resource`; session ownership and request-state binding use client_id, `iss` and
subject), but it is a pydantic model whose repr shows every field, so any `log(access_token)`,
`repr(request.user)` or traceback-with-locals would print the live credential. We therefore store
a fingerprint there, `sha256:<first 16 hex digits>`: enough to correlate log lines, useless as a
credential. Nothing else (the OAuth authorization-server provider's revoke/load calls) uses it here.

Principals: `key:<key_id>` for API keys, the JWT `sub` otherwise. A JWT whose `sub` starts with
`key:` is refused so it cannot impersonate a key's sessions or share its rate limits.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Literal

import anyio.to_thread
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials
from starlette.requests import HTTPConnection

from .jwt import JWTError, JWTVerifier, looks_like_jwt
from ._singleflight import SingleFlight
from .keys import KEY_PREFIX, KeyRecord, KeyStore, parse_key

__all__ = ["GatewayBearerBackend", "GatewayTokenVerifier", "RejectReason", "token_fingerprint"]

logger = logging.getLogger(__name__)

RejectReason = Callable[[Literal["api_key", "jwt", "unknown"], str], None]


def token_fingerprint(token: str) -> str:
    """A short, non-reversible name for a credential, for AccessToken.token and log correlation."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class GatewayTokenVerifier:
    """`mcp.server.auth.provider.TokenVerifier` accepting API keys and/or JWTs.

    `resource` is this server's resource URL (`AuthSettings.resource_server_url`): API keys are
    minted for this server, so they report it as their `AccessToken.resource`; JWTs report the
    configured audience they matched. `on_reject(kind, reason)` receives the reason of every
    refusal (for metrics or debug logs); reasons never contain the token.
    """

    def __init__(self, *, keys: KeyStore | None = None, jwt: JWTVerifier | None = None,
                 resource: str | None = None, on_reject: RejectReason | None = None) -> None:
        if keys is None and jwt is None:
            raise ValueError("GatewayTokenVerifier needs a KeyStore, a JWTVerifier, or both")
        self.keys = keys
        self.jwt = jwt
        self.resource = resource
        self._on_reject = on_reject
        self._proofs: SingleFlight[KeyRecord | None] = SingleFlight()
        # key id -> (the record a token was verified against, its AccessToken). A key id has one
        # secret, so a token that verified against this very record object has this AccessToken;
        # a reloaded, revoked or expired record is a different object (or fails `lookup`).
        self._tokens: dict[str, tuple[KeyRecord, AccessToken]] = {}

    async def verify_token(self, token: str) -> AccessToken | None:
        if token.startswith(KEY_PREFIX):
            return await self._verify_key(token)
        if looks_like_jwt(token):
            return self._verify_jwt(token)
        self._reject("unknown", "token is neither an API key nor a JWT")
        return None

    async def _verify_key(self, token: str) -> AccessToken | None:
        if self.keys is None:
            self._reject("api_key", "API keys are not enabled")
            return None
        if parse_key(token) is None:
            self._reject("api_key", "malformed API key")
            return None
        keys = self.keys
        settled, record = keys.lookup(token)
        if not settled:
            record = await self._proofs.run(token, lambda: anyio.to_thread.run_sync(keys.prove, token))
        if record is None:
            self._reject("api_key", "unknown, revoked or expired API key")
            return None
        cached = self._tokens.get(record.key_id)
        if cached is not None and cached[0] is record:
            return cached[1]
        access = self._key_token(token, record)
        if len(self._tokens) >= 4096:  # records of keys long gone: start over
            self._tokens.clear()
        self._tokens[record.key_id] = (record, access)
        return access

    def _key_token(self, token: str, record: KeyRecord) -> AccessToken:
        return AccessToken(
            token=token_fingerprint(token), client_id=record.principal, scopes=list(record.scopes),
            expires_at=int(record.expires_at) if record.expires_at is not None else None,
            resource=self.resource, subject=record.principal,
            claims={"auth": "api_key", "key_id": record.key_id, "key_name": record.name})

    def _verify_jwt(self, token: str) -> AccessToken | None:
        if self.jwt is None:
            self._reject("jwt", "JWT bearer tokens are not enabled")
            return None
        try:
            principal = self.jwt.verify(token)
        except JWTError as exc:
            self._reject("jwt", str(exc))
            return None
        if principal.subject.startswith("key:"):
            self._reject("jwt", "token 'sub' uses the reserved 'key:' prefix")
            return None
        claims: dict[str, object] = {"auth": "jwt"}
        if principal.issuer is not None:
            claims["iss"] = principal.issuer  # session ownership compares (client_id, iss, sub)
        return AccessToken(
            token=token_fingerprint(token), client_id=principal.subject, scopes=list(principal.scopes),
            expires_at=principal.expires_at, resource=principal.audience, subject=principal.subject,
            claims=claims)

    def _reject(self, kind: Literal["api_key", "jwt", "unknown"], reason: str) -> None:
        logger.debug("bearer token refused (%s): %s", kind, reason)
        if self._on_reject is not None:
            self._on_reject(kind, reason)


class GatewayBearerBackend(BearerAuthBackend):
    """The SDK's bearer backend, reading the Authorization header straight from the ASGI scope
    (the SDK's builds a Headers view and scans it twice on every request); the checks are its own."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, AuthenticatedUser] | None:
        header = None
        for name, value in conn.scope["headers"]:
            if name == b"authorization":  # the first one; ASGI names are lowercase (the SDK ignores others)
                header = value.decode("latin-1")
                break
        if not header or not header[:7].lower() == "bearer ":
            return None
        access = await self.token_verifier.verify_token(header[7:])
        if not access:
            return None
        if access.expires_at and access.expires_at < int(time.time()):
            return None
        if self.resource_server_url and not self._issued_for_this_resource(access.resource):
            logger.warning("Bearer token resource %r is not resource_server_url %s", access.resource,
                           self.resource_server_url)
            return None
        return AuthCredentials(access.scopes), AuthenticatedUser(access)
