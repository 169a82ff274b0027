"""GatewayTokenVerifier: API keys and JWTs through the SDK's bearer-auth middleware."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import httpx2
import jwt
import pytest
from mcp.server.auth.middleware.auth_context import AuthContextMiddleware, get_access_token
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend, RequireAuthMiddleware
from mcp.server.auth.provider import TokenVerifier
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mcp_gateway.security.auth import GatewayBearerBackend, GatewayTokenVerifier, token_fingerprint
from mcp_gateway.security.jwt import JWTSettings, JWTVerifier
from mcp_gateway.security.keys import KeyStore, ScryptParams

pytestmark = pytest.mark.anyio

SECRET = "an-hs256-secret-that-is-long-enough-0123456789"
RESOURCE = "https://gw.example/mcp"


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys.json", params=ScryptParams(n=2**10))


@pytest.fixture
def rejections() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def verifier(store: KeyStore, rejections: list[tuple[str, str]]) -> GatewayTokenVerifier:
    jwt_verifier = JWTVerifier(JWTSettings(secret=SECRET, issuer="https://idp", audience=RESOURCE))
    return GatewayTokenVerifier(keys=store, jwt=jwt_verifier, resource=RESOURCE,
                                on_reject=lambda kind, why: rejections.append((kind, why)))


def make_jwt(sub: str = "alice", **extra: object) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 300, "iss": "https://idp", "aud": RESOURCE,
                       "scope": "tools:summarize", **extra}, SECRET, algorithm="HS256")


async def test_api_key_becomes_an_access_token_without_the_plaintext(verifier: GatewayTokenVerifier,
                                                                     store: KeyStore) -> None:
    as_protocol: TokenVerifier = verifier  # statically checked: the SDK protocol is not runtime_checkable
    assert callable(as_protocol.verify_token)
    key_id, plaintext = store.create("ci", ["tools:*"])
    token = await verifier.verify_token(plaintext)
    assert token is not None
    assert token.client_id == f"key:{key_id}" and token.subject == f"key:{key_id}"
    assert token.scopes == ["tools:*"] and token.resource == RESOURCE
    assert token.token == token_fingerprint(plaintext) and token.token.startswith("sha256:")
    assert plaintext not in repr(token) and plaintext not in token.model_dump_json()
    assert token.claims == {"auth": "api_key", "key_id": key_id, "key_name": "ci"}
    again = await verifier.verify_token(plaintext)  # served from the cache
    assert again == token


async def test_jwt_becomes_an_access_token(verifier: GatewayTokenVerifier) -> None:
    raw = make_jwt()
    token = await verifier.verify_token(raw)
    assert token is not None
    assert token.client_id == "alice" and token.subject == "alice" and token.scopes == ["tools:summarize"]
    assert token.claims == {"auth": "jwt", "iss": "https://idp"} and token.resource == RESOURCE
    assert raw not in repr(token)


async def test_refusals_carry_reasons_but_never_the_token(verifier: GatewayTokenVerifier, store: KeyStore,
                                                          rejections: list[tuple[str, str]],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key_id, plaintext = store.create("ci", [])
    store.revoke(key_id)
    cases = [plaintext, "mgw_nope", make_jwt(sub="key:" + key_id), make_jwt(aud="other"), "plain-garbage"]
    for raw in cases:
        assert await verifier.verify_token(raw) is None
    assert [kind for kind, _ in rejections] == ["api_key", "api_key", "jwt", "jwt", "unknown"]
    assert rejections[2][1] == "token 'sub' uses the reserved 'key:' prefix"
    for raw in cases:
        assert all(raw not in why for _, why in rejections)
        assert raw not in caplog.text


async def test_disabled_credential_kinds(store: KeyStore) -> None:
    only_keys = GatewayTokenVerifier(keys=store)
    assert await only_keys.verify_token(make_jwt()) is None
    only_jwt = GatewayTokenVerifier(jwt=JWTVerifier(JWTSettings(secret=SECRET)))
    assert await only_jwt.verify_token("mgw_0123456789abcdef_" + "0" * 48) is None
    with pytest.raises(ValueError):
        GatewayTokenVerifier()


async def test_wired_into_the_sdk_bearer_middleware(verifier: GatewayTokenVerifier, store: KeyStore) -> None:
    """The wiring the server will use: AuthenticationMiddleware + AuthContextMiddleware + RequireAuth."""

    async def whoami(scope: Scope, receive: Receive, send: Send) -> None:
        token = get_access_token()
        assert token is not None
        await JSONResponse({"principal": token.client_id, "scopes": token.scopes})(scope, receive, send)

    app = Starlette(
        routes=[Route("/mcp", endpoint=RequireAuthMiddleware(whoami, required_scopes=[]))],
        middleware=[Middleware(AuthenticationMiddleware, backend=BearerAuthBackend(verifier)),
                    Middleware(AuthContextMiddleware)])
    key_id, plaintext = store.create("ci", ["tools:*"])
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://test") as client:
        anonymous = await client.get("/mcp")
        assert anonymous.status_code == 401
        bad = await client.get("/mcp", headers={"Authorization": "Bearer mgw_wrong"})
        assert bad.status_code == 401
        ok = await client.get("/mcp", headers={"Authorization": f"Bearer {plaintext}"})
        assert ok.status_code == 200 and ok.json() == {"principal": f"key:{key_id}", "scopes": ["tools:*"]}
        via_jwt = await client.get("/mcp", headers={"Authorization": f"Bearer {make_jwt()}"})
        assert via_jwt.json()["principal"] == "alice"


async def test_a_reused_access_token_follows_the_key_table(verifier: GatewayTokenVerifier, store: KeyStore,
                                                           tmp_path: Path) -> None:
    """The verifier reuses a key's AccessToken, but never past a change to the key or its revocation."""
    key_id, plaintext = store.create("ci", ["tools:*"])
    other_id, other = store.create("other", ["prompts:*"])
    first = await verifier.verify_token(plaintext)
    assert first is not None and await verifier.verify_token(plaintext) is first  # reused
    second = await verifier.verify_token(other)
    assert second is not None and second.client_id == f"key:{other_id}" and second.scopes == ["prompts:*"]
    assert await verifier.verify_token(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None

    path = tmp_path / "keys.json"
    table = json.loads(path.read_text())
    for entry in table["keys"]:
        if entry["id"] == key_id:
            entry["scopes"] = ["tools:summarize"]
    path.write_text(json.dumps(table))
    store.refresh(force=True)
    changed = await verifier.verify_token(plaintext)
    assert changed is not None and changed.scopes == ["tools:summarize"]

    store.revoke(key_id)
    assert await verifier.verify_token(plaintext) is None
    assert await verifier.verify_token(other) is not None


async def test_the_gateway_bearer_backend_decides_as_the_sdk_one(verifier: GatewayTokenVerifier,
                                                                 store: KeyStore) -> None:
    _, plaintext = store.create("ci", ["tools:*"])
    _, revoked = store.create("gone", [])
    store.revoke(revoked.split("_")[1])
    def auth(token: str, name: bytes = b"authorization") -> tuple[bytes, bytes]:
        return name, f"Bearer {token}".encode()

    cases: list[list[tuple[bytes, bytes]]] = [
        [],
        [(b"authorization", b"Basic Zm9vOmJhcg==")],
        [(b"authorization", f"Bearer {plaintext}".encode())],
        [(b"authorization", f"bEaReR {plaintext}".encode())],
        [(b"Authorization", f"Bearer {plaintext}".encode())],
        [auth(revoked, b"Authorization"), auth(plaintext)],
        [auth(revoked), auth(plaintext)],
        [auth(plaintext), auth(revoked)],
        [(b"authorization", f"Bearer  {plaintext}".encode())],
        [(b"authorization", f"Bearer {make_jwt()}".encode())],
        [(b"authorization", b"Bearer")],
        [(b"host", b"x"), (b"authorization", b"Bearer \xe9t\xe9")],
    ]
    ours, sdk = GatewayBearerBackend(verifier), BearerAuthBackend(verifier)
    for headers in cases:
        conn = HTTPConnection({"type": "http", "headers": headers})
        mine, theirs = await ours.authenticate(conn), await sdk.authenticate(conn)
        assert (mine is None) == (theirs is None), headers
        if mine is not None and theirs is not None:
            assert mine[0].scopes == theirs[0].scopes
            assert mine[1].access_token == theirs[1].access_token
    assert await ours.authenticate(HTTPConnection({"type": "http", "headers": cases[2]})) is not None
