"""Bearer JWT verification against locally configured keys (no network fetch, ever).

Keys: an HS256 shared secret (at least 32 bytes), a PEM public key (RSA -> RS256, EC P-256 -> ES256)
or a JWKS file (RSA and EC keys, chosen by the token's `kid`; the file is re-read when a token names
an unknown `kid` and the file changed, so keys rotate without a restart). The accepted algorithm is
fixed by the key, never by the token header, which closes the alg-confusion holes (`none`, HS256
signed with a public key).

Claims: `exp` is required by default; `exp`, `nbf` and `iat` are checked against an injectable clock
with `leeway` seconds of tolerance; `iss` and `aud` when configured. The principal is `sub`; scopes
come from `scope` (space-separated) or `scopes` / `scp` (a list, or a space-separated string).

Failures raise `JWTError` whose message is a fixed, short reason: it never contains the token or a
claim value, so it is safe to log and to return to the caller.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import GatewayError

# PyJWT and cryptography are imported where they are used: a gateway without `auth:` (every stdio
# server) imports this module only for JWTError, and they are ~30 ms of its start-up.

__all__ = ["JWTError", "JWTPrincipal", "JWTSettings", "JWTVerifier", "looks_like_jwt"]

_MIN_HS_SECRET = 32


class JWTError(GatewayError):
    """A bearer JWT that is not accepted; the message is a reason safe to log (no token, no claims)."""


@dataclass(frozen=True, slots=True)
class JWTSettings:
    """How to verify tokens; exactly one of `secret`, `public_key_pem`, `jwks_file`."""

    secret: str | bytes | None = None
    public_key_pem: str | bytes | None = None
    jwks_file: str | os.PathLike[str] | None = None
    issuer: str | None = None
    audience: str | Sequence[str] | None = None
    leeway: float = 30.0
    require_exp: bool = True
    max_token_bytes: int = 16_384


@dataclass(frozen=True, slots=True)
class JWTPrincipal:
    """What a valid token says: who (`subject`), what it may do (`scopes`), until when."""

    subject: str
    scopes: tuple[str, ...]
    expires_at: int | None
    issuer: str | None
    audience: str | None
    claims: Mapping[str, Any] = field(repr=False)


def looks_like_jwt(token: str) -> bool:
    """Three base64url segments separated by dots (a JWS compact serialization)."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return False
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    return all(set(part) <= allowed for part in parts)


def _alg_for_public_key(key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError("RSA public keys must have at least 2048 bits")
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"EC public keys must be on P-256 for ES256, not {key.curve.name}")
        return "ES256"
    raise ValueError(f"unsupported public key type {type(key).__name__}; use RSA (RS256) or EC P-256 (ES256)")


@dataclass(frozen=True, slots=True)
class _Key:
    key: Any
    algorithm: str


class JWTVerifier:
    """Verifies compact JWS tokens; construct once, call `verify` per request (thread-safe)."""

    def __init__(self, settings: JWTSettings, *, clock: Callable[[], float] = time.time) -> None:
        chosen = [s for s in (settings.secret, settings.public_key_pem, settings.jwks_file) if s is not None]
        if len(chosen) != 1:
            raise ValueError("JWT verification needs exactly one of secret, public_key_pem, jwks_file")
        self.settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._single: _Key | None = None
        self._jwks: dict[str, _Key] = {}
        self._jwks_stamp: tuple[int, int] | None = None
        if settings.secret is not None:
            secret = settings.secret.encode() if isinstance(settings.secret, str) else settings.secret
            if len(secret) < _MIN_HS_SECRET:
                raise ValueError(f"the HS256 secret must be at least {_MIN_HS_SECRET} bytes long")
            self._single = _Key(secret, "HS256")
        elif settings.public_key_pem is not None:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            pem = settings.public_key_pem
            try:
                key = load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
            except ValueError:
                raise ValueError("public_key_pem is not a PEM public key") from None
            self._single = _Key(key, _alg_for_public_key(key))
        else:
            self._load_jwks()

    # -- JWKS file -------------------------------------------------------------------------------

    def _load_jwks(self) -> None:
        import jwt

        assert self.settings.jwks_file is not None
        path = Path(self.settings.jwks_file)
        try:
            st = path.stat()
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read the JWKS file {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"the JWKS file {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
        keys: dict[str, _Key] = {}
        for index, raw in enumerate(data.get("keys", []) if isinstance(data, dict) else []):
            if not isinstance(raw, dict) or raw.get("kty") not in ("RSA", "EC"):
                continue  # symmetric keys belong in `secret`, never in a key set
            if raw.get("use", "sig") != "sig":
                continue
            try:
                jwk = jwt.PyJWK(raw)
            except jwt.PyJWTError:
                continue
            try:
                algorithm = _alg_for_public_key(jwk.key)
            except ValueError:
                continue
            if raw.get("alg") not in (None, algorithm):
                continue
            keys[str(raw.get("kid", f"#{index}"))] = _Key(jwk.key, algorithm)
        if not keys:
            raise ValueError(f"the JWKS file {path} has no usable RSA or EC P-256 signing key")
        self._jwks = keys
        self._jwks_stamp = (st.st_mtime_ns, st.st_size)

    def _jwks_key(self, kid: str | None) -> _Key:
        with self._lock:
            if kid is None:
                if len(self._jwks) == 1:
                    return next(iter(self._jwks.values()))
                raise JWTError("token header has no 'kid' and the key set has several keys")
            found = self._jwks.get(kid)
            if found is None:
                path = Path(str(self.settings.jwks_file))
                try:
                    st = path.stat()
                    if (st.st_mtime_ns, st.st_size) != self._jwks_stamp:
                        self._load_jwks()
                except (OSError, ValueError):
                    pass  # keep serving with the keys we have
                found = self._jwks.get(kid)
            if found is None:
                raise JWTError("token is signed with an unknown key id")
            return found

    # -- verification ----------------------------------------------------------------------------

    def verify(self, token: str) -> JWTPrincipal:
        """The token's principal, or JWTError with a short reason."""
        import jwt

        settings = self.settings
        if len(token) > settings.max_token_bytes:
            raise JWTError("token is too large")
        if not looks_like_jwt(token):
            raise JWTError("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise JWTError("malformed token header") from None
        kid = header.get("kid")
        key = self._single
        if key is None:
            key = self._jwks_key(kid if isinstance(kid, str) else None)
        if header.get("alg") != key.algorithm:
            raise JWTError(f"token algorithm is not allowed (expected {key.algorithm})")
        required = ["sub"] + (["exp"] if settings.require_exp else [])
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[key.algorithm],
                audience=settings.audience, issuer=settings.issuer,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "verify_aud": settings.audience is not None,
                         "verify_iss": settings.issuer is not None,
                         "require": required})
        except jwt.InvalidSignatureError:
            raise JWTError("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise JWTError(f"token has no '{exc.claim}' claim") from None
        except jwt.InvalidAudienceError:
            raise JWTError("token is not meant for this audience") from None
        except jwt.InvalidIssuerError:
            raise JWTError("token is from an unexpected issuer") from None
        except jwt.InvalidAlgorithmError:
            raise JWTError("token algorithm is not allowed") from None
        except jwt.PyJWTError:
            raise JWTError("malformed token") from None
        self._check_times(claims)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise JWTError("token 'sub' claim must be a non-empty string")
        exp = claims.get("exp")
        return JWTPrincipal(
            subject=subject, scopes=_scopes(claims), expires_at=int(exp) if exp is not None else None,
            issuer=claims.get("iss") if isinstance(claims.get("iss"), str) else None,
            audience=self._matched_audience(claims), claims=claims)

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now, leeway = self._clock(), self.settings.leeway
        for name in ("exp", "nbf", "iat"):
            value = claims.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise JWTError(f"token '{name}' claim must be a number")
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if exp is not None and exp <= now - leeway:
            raise JWTError("token has expired")
        if nbf is not None and nbf > now + leeway:
            raise JWTError("token is not valid yet (nbf)")
        if iat is not None and iat > now + leeway:
            raise JWTError("token is issued in the future (iat)")

    def _matched_audience(self, claims: Mapping[str, Any]) -> str | None:
        """The configured audience the token was accepted for (becomes AccessToken.resource)."""
        expected = self.settings.audience
        if expected is None:
            return None
        wanted = [expected] if isinstance(expected, str) else list(expected)
        aud = claims.get("aud")
        present = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
        return next((a for a in wanted if a in present), None)


def _scopes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    for name in ("scope", "scopes", "scp"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            return tuple(s for s in value.split() if s)
        if isinstance(value, list) and all(isinstance(s, str) for s in value):
            return tuple(s for s in value if s)
        raise JWTError(f"token '{name}' claim must be a string or a list of strings")
    return ()
