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
    ("GET /v1?sig=AAA&x=1", "GET /v1?sig=[REDACTED]&x=1"),
    ("GET /v1;SIGNATURE=AAA", "GET /v1;SIGNATURE=[REDACTED]"),
    ("a&auth=AAA", "a&auth=[REDACTED]"),
    ("a?Secret=AAA", "a?Secret=[REDACTED]"),
    ("a?password=AAA", "a?password=[REDACTED]"),
    ("a?token=AAA", "a?token=[REDACTED]"),
    ("a?apikey=AAA", "a?apikey=[REDACTED]"),
    ("a?api-key=AAA", "a?api-key=[REDACTED]"),
    ("set-cookie: AAA", "set-cookie: [REDACTED]"),
    ("'x-auth-token' : AAA", "'x-auth-token' : [REDACTED]"),
    ("Secret_Key\t= AAA", "Secret_Key\t= [REDACTED]"),
])
def test_shapes(text: str, expected: str) -> None:
    redactor = Redactor()
    assert redactor.redact_text(text) == expected
    # the clue search lets every text a shape rewrites through to the patterns
    assert redactor._clean(text) is (expected == text)


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
     "hunter22secret", "token", "Secret", "sig", "signature", "auth", "apikey", " :", "\t=", "\x1c:", "='", "&",
     "?", ";", "my_field"])
clue_text = st.lists(st.one_of(shape_fragments, st.text(max_size=6)), max_size=8).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=clue_text)
def test_the_clue_search_changes_no_result(text: str) -> None:
    for redactor in (Redactor(), Redactor(["hunter22secret"], fields=["my_field", "password"]),
                     Redactor(patterns=[r"(?i)(my)-field"])):
        assert redactor.redact_text(text) == _slow(redactor, text)


# -- property: the log filter's one-search shortcut redacts exactly as the general way -----------------

secret_names = st.builds(
    lambda pad1, name, pad2, case: pad1 + (name.upper() if case else name) + pad2,
    st.sampled_from(["", " ", "\t", "\x0b", "\x1c", "\x1f", "\n"]),
    st.sampled_from(["password", "api-key", "api_key", "X-Api-Key", "session-token", "session_token", "my_field",
                     "my-field", "tokens", "input_tokens", "token_count", "passwd2", "authorization", "cookie"]),
    st.sampled_from(["", " ", "\r", "\x1e", "\x0c"]),
    st.booleans(),
)
hostile_text = st.one_of(clue_text, secret_names, st.text(max_size=12))


class _Text(str):
    """A str subclass, as a dict key or value."""


def hostile_value(depth: int = 2) -> st.SearchStrategy[object]:
    leaf = st.one_of(hostile_text, hostile_text.map(_Text), st.integers(), st.none(), st.floats(allow_nan=False),
                     st.binary(max_size=8), st.builds(bytearray, st.binary(max_size=4)))
    return st.recursive(leaf, lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.one_of(hostile_text, st.integers(), hostile_text.map(_Text)), children, max_size=3),
        st.dictionaries(hostile_text, children, max_size=2).map(lambda d: __import__("types").MappingProxyType(d)),
    ), max_leaves=8)


REDACTORS = (Redactor(), Redactor(["hunter22secret"], fields=["my_field", "password"]),
             Redactor(patterns=[r"^(my)-field"]), Redactor(fields=[], shapes=False), Redactor(["hunter22secret"]))


def same(a: object, b: object) -> bool:
    """Equal, and of the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msg=hostile_text, args=st.lists(st.one_of(hostile_text, st.integers()), max_size=2),
       extras=st.dictionaries(secret_names.filter(str.isidentifier) | st.sampled_from(["detail", "gateway_call"]),
                              hostile_value(), max_size=3))
def test_the_filter_shortcut_matches_the_general_way(msg: str, args: list[object], extras: dict[str, object]) -> None:
    fmt = msg.replace("%", "%%") + " %s" * len(args)
    for redactor in REDACTORS:
        flt = RedactingFilter(redactor)
        fast, slow = (logging.LogRecord("t", logging.INFO, "f", 1, fmt, tuple(args), None) for _ in range(2))
        for record in (fast, slow):
            record.__dict__.update(extras)
        assert flt.filter(fast)
        flt._redact(slow, slow.getMessage(), [(k, v) for k, v in vars(slow).items() if k in extras])
        assert (fast.msg, fast.args, fast.exc_info) == (slow.msg, slow.args, slow.exc_info)
        for name in extras:
            assert same(getattr(fast, name), getattr(slow, name)), name


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(hostile_text, min_size=1, max_size=4), name=secret_names)
def test_one_search_vouches_for_every_text_and_name(texts: list[str], name: str) -> None:
    for redactor in REDACTORS:
        if redactor.leaves_unchanged([*texts, name + "="]):
            assert all(redactor.redact_text(t) == t for t in texts)
            assert redactor.redact_text(name + "=") == name + "="
            assert not redactor.is_secret_field(name)
    # a secret field name never passes, whatever its padding and case
    assert not REDACTORS[1].leaves_unchanged(["x", " Password\x1c="])


def test_the_filter_shortcut_still_redacts_a_secret_anywhere() -> None:
    redactor = Redactor(["hunter22secret"], fields=["password", "my_field"])
    for extra in ({"detail": {"ok": ["fine", ("hunter22secret",)]}}, {"detail": {" Password ": 1}},
                  {"detail": {_Text("hunter22secret"): 1}}, {"detail": {_Text("password"): "x"}},
                  {"my_field": 7}, {"detail": {"k": b"raw"}}, {"detail": "Bearer abc"}):
        record = logging.LogRecord("t", logging.INFO, "f", 1, "call %s", ("done",), None)
        record.__dict__.update(extra)
        RedactingFilter(redactor).filter(record)
        assert "hunter22secret" not in repr(vars(record)) and "abc" not in repr(vars(record))
        assert "Password ': 1" not in repr(vars(record)) and "b'raw'" not in repr(vars(record))
    record = logging.LogRecord("t", logging.INFO, "f", 1, "%s", ("key=hunter22secret",), None)
    RedactingFilter(redactor).filter(record)
    assert record.msg == f"key={MARK}" and record.args is None
