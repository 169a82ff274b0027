"""Redaction: known secrets, secret shapes, secret fields, log records; a property test on top."""

from __future__ import annotations

import io
import logging
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mcp_gateway.security.redact import MARK, RedactingFilter, Redactor

KEY = "mgw_0123456789abcdef_" + "ab12" * 12
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl"


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [REDACTED]"),
    ("authorization=Basic Zm9vOmJhcg==", "authorization=Basic [REDACTED]"),
    ("{'Authorization': 'Bearer xyz'}", "{'Authorization': 'Bearer [REDACTED]'}"),
    ("sent bearer tok_123 upstream", "sent bearer [REDACTED] upstream"),
    ("x-api-key: abc123", "x-api-key: [REDACTED]"),
    ("GET /v1?api_key=AAA&b=2", "GET /v1?api_key=[REDACTED]&b=2"),
    ("GET /v1?key=AAA", "GET /v1?key=[REDACTED]"),
    (f"used {KEY} today", "used mgw_0123456789abcdef_[REDACTED] today"),
    ("mgw_short_butlongsecret", "mgw_[REDACTED]"),
    ("key sk-proj-abcdefghijklmnop end", "key sk-[REDACTED] end"),
    (f"token {JWT}.", "token [REDACTED]."),
    ('{"password": "p@ss", "user": "bob"}', '{"password": "[REDACTED]", "user": "bob"}'),
    ("client_secret=xyz&x=1", "client_secret=[REDACTED]&x=1"),
    ("tokens: 5, input_tokens=7", "tokens: 5, input_tokens=7"),  # counts are not secrets
    ("nothing to see", "nothing to see"),
])
def test_shapes(text: str, expected: str) -> None:
    assert Redactor().redact_text(text) == expected


def test_redaction_is_idempotent() -> None:
    redactor = Redactor(["hunter22"])
    for text in ["Authorization: Bearer x", KEY, "password=hunter22", "Bearer [REDACTED]"]:
        once = redactor.redact_text(text)
        assert redactor.redact_text(once) == once


def test_known_secrets_and_nested_values() -> None:
    redactor = Redactor(["hunter22", "abc"], fields=["password", "x-api-key", "session_token"])
    value = {
        "user": "bob",
        "note": "pw is hunter22!",
        "Password": {"nested": "whole value goes"},
        "X-Api-Key": 12345,
        "items": [("hunter22", 1), {"session-token": "t"}],
        "hunter22": "as a key",
        "abc": "too short to be a known secret",
    }
    assert redactor.redact(value) == {
        "user": "bob",
        "note": f"pw is {MARK}!",
        "Password": MARK,
        "X-Api-Key": MARK,
        "items": [(MARK, 1), {"session-token": MARK}],
        MARK: "as a key",
        "abc": "too short to be a known secret",
    }
    assert redactor.redact(42) == 42 and redactor.redact(None) is None
    assert redactor.redact(b"hunter22") == MARK
    assert redactor.with_secrets(["newsecret1"]).redact_text("newsecret1 hunter22") == f"{MARK} {MARK}"


def test_logging_filter_redacts_message_args_exception_and_extras() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s|%(detail)s"))
    handler.addFilter(RedactingFilter(Redactor(["hunter22"])))
    logger = logging.getLogger("test_redact.filter")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError("failed with Authorization: Bearer hunter22")
        except RuntimeError:
            logger.exception("calling %s with %s", "https://x/?api_key=zzz", KEY,
                             extra={"detail": {"password": "p", "ok": "hunter22"}})
        logger.warning("%d%% done", 50, extra={"detail": "fine"})
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "hunter22" not in out and "zzz" not in out and KEY not in out and "'p'" not in out
    assert "api_key=[REDACTED]" in out and "RuntimeError" in out and "50% done|fine" in out


# -- property: a known secret never survives ---------------------------------------------------------

secret_text = st.text(alphabet=string.ascii_letters + string.digits + "-_.+/=!@#$%^&*()[]{}", min_size=8,
                      max_size=40)
# random text, salted with fragments that trigger the shape patterns next to the secret
filler = st.lists(st.one_of(st.text(max_size=20), st.sampled_from(
    ["Bearer ", "Authorization: ", "password=", "?api_key=", "mgw_", "sk-", "eyJ", "[REDACTED]", "]", "=",
     "\"", " "])), max_size=5).map("".join)


@st.composite
def embedded(draw: st.DrawFn, secret: str) -> str:
    parts = draw(st.lists(filler, min_size=1, max_size=4))
    return secret.join(parts) if len(parts) > 1 else parts[0] + secret


def json_like(secret: str) -> st.SearchStrategy[object]:
    leaf = st.one_of(embedded(secret), filler, st.integers(), st.none())
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.one_of(embedded(secret), filler), children, max_size=4),
        ),
        max_leaves=12,
    )


def strings_in(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings_in(k) + strings_in(v)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings_in(item)]
    return []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), secret=secret_text, other=secret_text)
def test_a_known_secret_never_survives(data: st.DataObject, secret: str, other: str) -> None:
    assume(secret not in MARK and other not in MARK)
    redactor = Redactor([secret, other])
    text = data.draw(embedded(secret))
    assert secret not in redactor.redact_text(text)
    tree = data.draw(json_like(secret))
    for s in strings_in(redactor.redact(tree)):
        assert secret not in s and other not in s


# -- property: the clue search never skips a text a pattern would rewrite ----------------------------

def _slow(redactor: Redactor, text: str) -> str:
    """redact_text without the clue search: every pattern, every pass."""
    for _ in range(8):
        new = redactor._once(text)
        if new == text:
            return text
        text = new
    return MARK


shape_fragments = st.sampled_from(
    ["Bearer ", "BEARER\t", "Authorization: ", "proxy-authorization=", "PASSWORD=", "Password\": \"",
     "?api_key=", "&SIG=", ";Token=", "X-Api-Key: ", "x_api_key=", "Cookie=", "set-cookie: ", "X-Auth-Token:",
     "mgw_", "mgw_0123456789abcdef_", "sk-", "eyJ", "eyJhbGciOi.eyJzdWIi.", "session-token: ",
     "client_secret =", "=", ":", "\"", "'", " ", "-", "_", "abcdefgh12345678",
     "\u017f", "\u212a", "\u0130", "\u0131", "pa\u017f\u017fword=", "coo\u212aie: ", "my-field: ",
     "hunter22secret"])
clue_text = st.lists(st.one_of(shape_fragments, st.text(max_size=6)), max_size=8).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=clue_text)
def test_the_clue_search_changes_no_result(text: str) -> None:
    for redactor in (Redactor(), Redactor(["hunter22secret"], fields=["my_field", "password"]),
                     Redactor(patterns=[r"(?i)(my)-field"])):
        assert redactor.redact_text(text) == _slow(redactor, text)
