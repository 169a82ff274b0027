"""The redactor skips the patterns when a text holds no clue any of them needs: its output must equal
running every pattern, for texts with and without secrets, in any case and with the non-ASCII
characters a case-insensitive pattern reads as ASCII."""

from __future__ import annotations

import random
import re

import pytest

from mcp_gateway.security.redact import MARK, Redactor

SAMPLES = [
    "tool=summarize version=1.2.0 route=default input_tokens=100 output_tokens=70 ms=0.2",
    "Authorization: Bearer abc.def.ghi", "AUTHORIZATION=Basic Zm9vOmJhcg==",
    "Proxy-Authorization: token xyz123",
    "x-api-key: k-123456", "X-Goog-Api-Key=AIzaSyXXXX", "Cookie: session=abcdef", "x-auth-token: t0k3n",
    "call with bearer sk-abcdefgh12345678 please", "GET /v1?api_key=secret123&x=1", "/x?KEY=abc;sig=zzz",
    "mgw_0123456789abcdef_SECRETpart", "mgw_notakeyid_butlong", "sk-proj-ABCDEFGH1234",
    "sk-ant-api03-xyz_12345678",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature", '{"password": "hunter2"}', "passwd=letmein",
    "client-secret: s3cr3t", "refresh_token='abc'", "private-key = -----BEGIN", "Set-Cookie: a=b",
    # what (?i) matches but str.lower() would not: dotless/dotted i, long s, Kelvin sign
    "AUTHORİZATİON: Bearer x1", "authorızation: token y2", "paſſword=zz9", "api_\u212aey=v4l",
    "X-API-\u212aEY: 777",
    "nothing secret here", "", "   ", "token", "the key to success", "[REDACTED]", "a=b c:d",
]


def reference(redactor: Redactor, text: str) -> str:
    """Every pattern on every pass: what redaction did before it learnt to skip any."""
    for _ in range(8):
        new = redactor._once(text)  # every pattern, no clue search
        if new == text:
            return text
        text = new
    return MARK


@pytest.mark.parametrize("redactor", [
    Redactor(), Redactor(["hunter2", "letmein-123"]), Redactor(fields=["weird-field", "x"]),
    Redactor(patterns=[r"(?i)(ssn=)\d+", re.compile(r"card \d{4}")]), Redactor(shapes=False),
], ids=["default", "secrets", "fields", "patterns", "no-shapes"])
def test_screened_redaction_equals_running_every_pattern(redactor: Redactor) -> None:
    rng = random.Random(7)
    texts = list(SAMPLES)
    for _ in range(400):  # shuffled fragments of the samples, in random case
        words = rng.sample(SAMPLES, 3)
        text = " ".join(w[rng.randrange(len(w) + 1):] + w[:rng.randrange(len(w) + 1)] for w in words)
        texts.append("".join(c.upper() if rng.random() < 0.3 else c for c in text))
    texts += ["ssn=123456 and card 1234", "weird_field: v", "weird-field=v"]
    for text in texts:
        assert redactor.redact_text(text) == reference(redactor, text), text


def test_secrets_spelt_with_characters_that_fold_to_ascii_are_redacted() -> None:
    redactor = Redactor()
    for text in ("authorızation: token y2sEcReT", "paſſword=zz9sEcReT", "X-API-\u212aEY: 777sEcReT"):
        assert "sEcReT" not in redactor.redact_text(text)
    with_secret = redactor.with_secrets(["s3cr3t-value"])
    assert with_secret.redact_text("plain s3cr3t-value text") == f"plain {MARK} text"
