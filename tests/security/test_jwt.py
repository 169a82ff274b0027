"""JWTVerifier: HS256, RS256 (PEM) and ES256 (JWKS file), time claims, issuer/audience, scopes."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcp_gateway.security.jwt import JWTError, JWTSettings, JWTVerifier, looks_like_jwt

SECRET = "an-hs256-secret-that-is-long-enough-0123456789"
NOW = 1_700_000_000


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(key: Any) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "exp": NOW + 300, "iat": NOW, **extra}


def hs(settings_kw: dict[str, Any] | None = None, now: float = NOW) -> JWTVerifier:
    return JWTVerifier(JWTSettings(secret=SECRET, **(settings_kw or {})), clock=lambda: now)


def reason(verifier: JWTVerifier, token: str) -> str:
    with pytest.raises(JWTError) as info:
        verifier.verify(token)
    message = str(info.value)
    signature = token.split(".")[2] if token.count(".") == 2 else token
    assert token not in message and (not signature or signature not in message)
    return message


def test_hs256_accepts_and_extracts_scopes() -> None:
    token = jwt.encode(claims(scope="tools:summarize prompts:*", iss="https://idp"), SECRET,
                       algorithm="HS256")
    principal = hs().verify(token)
    assert principal.subject == "alice"
    assert principal.scopes == ("tools:summarize", "prompts:*")
    assert principal.expires_at == NOW + 300 and principal.issuer == "https://idp"
    assert looks_like_jwt(token) and not looks_like_jwt("mgw_x_y") and not looks_like_jwt("a.b")


@pytest.mark.parametrize(("claim", "value", "expected"), [
    ("scopes", ["tools:*", "sessions:own"], ("tools:*", "sessions:own")),
    ("scp", ["prompts:x"], ("prompts:x",)),
    ("scp", "a:b c:d", ("a:b", "c:d")),
])
def test_scope_claim_variants(claim: str, value: Any, expected: tuple[str, ...]) -> None:
    token = jwt.encode(claims(**{claim: value}), SECRET, algorithm="HS256")
    assert hs().verify(token).scopes == expected


def test_time_claims_with_leeway() -> None:
    expired = jwt.encode(claims(exp=NOW - 10), SECRET, algorithm="HS256")
    assert hs().verify(expired).subject == "alice"  # inside the 30 s leeway
    assert reason(hs(now=NOW + 60), expired) == "token has expired"
    future_nbf = jwt.encode(claims(nbf=NOW + 120), SECRET, algorithm="HS256")
    assert reason(hs(), future_nbf) == "token is not valid yet (nbf)"
    assert hs(now=NOW + 100).verify(future_nbf).subject == "alice"
    future_iat = jwt.encode(claims(iat=NOW + 3600, exp=NOW + 7200), SECRET, algorithm="HS256")
    assert reason(hs(), future_iat) == "token is issued in the future (iat)"
    no_exp = jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256")
    assert reason(hs(), no_exp) == "token has no 'exp' claim"
    assert hs({"require_exp": False}).verify(no_exp).expires_at is None
    no_sub = jwt.encode({"exp": NOW + 10}, SECRET, algorithm="HS256")
    assert reason(hs(), no_sub) == "token has no 'sub' claim"


def test_issuer_and_audience() -> None:
    verifier = hs({"issuer": "https://idp", "audience": "https://gw/mcp"})
    good = jwt.encode(claims(iss="https://idp", aud=["other", "https://gw/mcp"]), SECRET, algorithm="HS256")
    assert verifier.verify(good).audience == "https://gw/mcp"
    wrong_aud = jwt.encode(claims(iss="https://idp", aud="other"), SECRET, algorithm="HS256")
    assert reason(verifier, wrong_aud) == "token is not meant for this audience"
    wrong_iss = jwt.encode(claims(iss="https://evil", aud="https://gw/mcp"), SECRET, algorithm="HS256")
    assert reason(verifier, wrong_iss) == "token is from an unexpected issuer"
    no_aud = jwt.encode(claims(iss="https://idp"), SECRET, algorithm="HS256")
    assert "aud" in reason(verifier, no_aud)


def test_signature_and_algorithm_attacks(rsa_key: rsa.RSAPrivateKey) -> None:
    forged = jwt.encode(claims(), "another-secret-that-is-also-long-enough-xx", algorithm="HS256")
    assert reason(hs(), forged) == "bad signature"
    unsigned = jwt.encode(claims(), None, algorithm="none")  # type: ignore[arg-type]
    assert reason(hs(), unsigned) == "token algorithm is not allowed (expected HS256)"
    # HS256 signed with the RSA *public* key must not pass an RS256 verifier (alg confusion)
    rs = JWTVerifier(JWTSettings(public_key_pem=pem(rsa_key)), clock=lambda: NOW)
    header = {"alg": "HS256", "typ": "JWT"}
    confused = jwt.api_jws.PyJWS().encode(json.dumps(claims()).encode(), b"k" * 32, algorithm="HS256",
                                          headers=header)
    assert reason(rs, confused) == "token algorithm is not allowed (expected RS256)"
    assert reason(hs(), "x" * 20000) == "token is too large"
    assert reason(hs(), "a.b.c") == "malformed token header"


def test_rs256_with_pem(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier = JWTVerifier(JWTSettings(public_key_pem=pem(rsa_key)), clock=lambda: NOW)
    token = jwt.encode(claims(scope="tools:*"), rsa_key, algorithm="RS256")
    assert verifier.verify(token).scopes == ("tools:*",)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        JWTVerifier(JWTSettings(secret="short"))
    with pytest.raises(ValueError, match="exactly one"):
        JWTVerifier(JWTSettings())


def test_es256_with_jwks_file_and_rotation(tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey,
                                           rsa_key: rsa.RSAPrivateKey) -> None:
    def jwk(key: Any, kid: str) -> dict[str, Any]:
        algorithm = jwt.algorithms.ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) \
            else jwt.algorithms.RSAAlgorithm
        data = json.loads(algorithm.to_jwk(key.public_key()))
        return {**data, "kid": kid, "use": "sig"}

    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk(ec_key, "ec1"), {"kty": "oct", "k": "c2VjcmV0", "kid": "sym"}]}))
    verifier = JWTVerifier(JWTSettings(jwks_file=path), clock=lambda: NOW)
    token = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "ec1"})
    assert verifier.verify(token).subject == "alice"
    sym = jwt.encode(claims(), "secret" * 8, algorithm="HS256", headers={"kid": "sym"})
    assert reason(verifier, sym) == "token is signed with an unknown key id"
    rotated = jwt.encode(claims(), rsa_key, algorithm="RS256", headers={"kid": "rsa2"})
    assert reason(verifier, rotated) == "token is signed with an unknown key id"
    path.write_text(json.dumps({"keys": [jwk(ec_key, "ec1"), jwk(rsa_key, "rsa2")]}))
    assert verifier.verify(rotated).subject == "alice"  # the file was re-read for the new kid
    bad = tmp_path / "empty.json"
    bad.write_text(json.dumps({"keys": []}))
    with pytest.raises(ValueError, match="no usable"):
        JWTVerifier(JWTSettings(jwks_file=bad))


def test_real_clock_default() -> None:
    token = jwt.encode({"sub": "bob", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    assert JWTVerifier(JWTSettings(secret=SECRET)).verify(token).subject == "bob"
