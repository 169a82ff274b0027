"""Helpers shared by the security tests."""

from __future__ import annotations

from mcp_gateway.security.keys import ScryptParams


class CountingKdf:
    """KeyStore's scrypt seam, counting runs: proves which requests paid for a key derivation."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, params: ScryptParams, secret: str, salt: bytes) -> bytes:
        self.calls += 1
        return params.derive(secret, salt)
