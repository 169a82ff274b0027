"""Redaction: keep secrets out of logs, audit records and error messages.

A `Redactor` knows three things:

- exact secret values (API keys read from the environment, provider keys, HS256 secrets...):
  every occurrence, anywhere in a string, becomes `[REDACTED]`;
- secret shapes: `Bearer <token>`, `mgw_<id>_<secret>` keys (the id is kept, it is not secret),
  `sk-...` provider keys, JWT-shaped strings, `api_key=...`-style query parameters, the values of
  Authorization / x-api-key style headers, and `name=value` / `"name": "value"` pairs for the
  configured secret field names;
- secret field names: in dicts (recursively, through lists and tuples) the value of any key whose
  normalized name (lowercase, `-` -> `_`) is one of them is replaced whole, whatever its type.

Strings are rewritten until nothing matches (so a replacement can never splice a new secret out of
its neighbours); dict keys are redacted like any string. Most text holds no secret: one search for
the words no shape can match without (`_CLUE_WORDS`, `_CLUE_NAMES`) settles it before any pattern runs.

`RedactingFilter` applies a Redactor to log records: the formatted message, the exception and stack
text, and every `extra` attribute. Attach it to handlers (handler filters see records propagated
from child loggers; logger filters do not).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["DEFAULT_SECRET_FIELDS", "MARK", "RedactingFilter", "Redactor"]

MARK = "[REDACTED]"
_MIN_SECRET_LENGTH = 4
_MAX_PASSES = 8

DEFAULT_SECRET_FIELDS: frozenset[str] = frozenset({
    "password", "passwd", "secret", "client_secret", "token", "access_token", "refresh_token", "id_token",
    "api_key", "apikey", "x_api_key", "authorization", "proxy_authorization", "cookie", "set_cookie",
    "private_key", "secret_key", "session_token",
})

# Each pattern keeps group 1 (a harmless prefix) and replaces the rest with MARK.
_SHAPES: tuple[str, ...] = (
    # header lines / dict reprs: Authorization: Bearer x, "x-api-key": "x", cookie=x
    r"(?i)((?:proxy-)?authorization[\"']?+\s*+[:=]\s*+[\"']?+(?:(?:bearer|basic|token|digest)\s++)?+)(?!\[REDACTED\])[^\s\"',;}\]]+",
    r"(?i)((?:x-api-key|api-key|x-goog-api-key|x-auth-token|cookie)[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\])[^\s\"',;}\]]+",
    # bare bearer tokens in prose
    r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*",
    # query parameters
    r"(?i)([?&;](?:api[_-]?key|key|token|access_token|auth|secret|password|sig|signature)=)(?!\[REDACTED\])[^&\s#\"']+",
    # our own API keys: keep the (public) key id
    r"(mgw_[0-9a-f]{16}_)[0-9A-Za-z]+",
    r"(mgw_)(?![0-9a-f]{16}_\[REDACTED\])[0-9A-Za-z_]{8,}",
    # provider keys: sk-..., sk-proj-..., sk-ant-...
    r"(\bsk-)[A-Za-z0-9_\-]{8,}",
    # JWTs (header.payload.signature; the header always starts with eyJ)
    r"()\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*",
)

# Lowercased text that no shape above can match without: a shape matches only where one of these
# words occurs, or one of `_CLUE_NAMES` before `=` (the field names' pattern adds its names, before
# `:` or `=`).
_CLUE_WORDS = ("authorization", "api_key", "api-key", "auth_token", "auth-token", "cookie", "bearer", "mgw_", "sk-",
               "eyj")
_CLUE_NAMES = ("key", "token", "auth", "secret", "password", "sig", "signature")


def _normalize(name: str) -> str:
    return name.strip().lower().replace("-", "_")


class Redactor:
    """Replaces known secrets and secret-shaped text; immutable after construction."""

    def __init__(self, secrets: Iterable[str] = (), *, fields: Iterable[str] = DEFAULT_SECRET_FIELDS,
                 patterns: Iterable[str | re.Pattern[str]] = (), shapes: bool = True) -> None:
        """`secrets` shorter than 4 characters are ignored (redacting them would shred every text).

        `patterns`: extra regexes; the whole match is replaced, or everything after group 1 if the
        pattern has groups.
        """
        exact = sorted({s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET_LENGTH},
                       key=lambda s: (-len(s), s))
        self._exact = re.compile("|".join(map(re.escape, exact))) if exact else None
        self._exact_values = frozenset(exact)
        self.fields = frozenset(_normalize(f) for f in fields)
        compiled: list[re.Pattern[str]] = []
        if shapes:
            compiled += [re.compile(p) for p in _SHAPES]
        if self.fields:
            names = "|".join(sorted(map(re.escape, self.fields), key=len, reverse=True))
            loose = names.replace("_", "[_-]")
            compiled.append(re.compile(
                rf"(?i)((?<![A-Za-z0-9])[\"']?(?:{loose})[\"']?+\s*+[:=]\s*+[\"']?+"
                rf"(?:(?:bearer|basic|token|digest)\s++)?+)(?!\[REDACTED\])[^\s\"',;&}}\]]+"))
        extra = tuple(p if isinstance(p, re.Pattern) else re.compile(p) for p in patterns)
        self._patterns = (*compiled, *extra)
        self._clue_words = _CLUE_WORDS if shapes else ()
        self._clue_names = _names_before_separator([*(_CLUE_NAMES if shapes else ()), *self.fields])
        self._unclued = extra  # caller-given patterns: no clue known, always searched

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        """A Redactor that also knows `secrets` (e.g. after a config reload adds provider keys)."""
        clone = Redactor.__new__(Redactor)
        merged = sorted(self._exact_values | {s for s in secrets if isinstance(s, str)
                                              and len(s) >= _MIN_SECRET_LENGTH}, key=lambda s: (-len(s), s))
        clone._exact = re.compile("|".join(map(re.escape, merged))) if merged else None
        clone._exact_values = frozenset(merged)
        clone.fields = self.fields
        clone._patterns = self._patterns
        clone._clue_words = self._clue_words
        clone._clue_names = self._clue_names
        clone._unclued = self._unclued
        return clone

    def _clean(self, text: str) -> bool:
        """True when no pattern can match `text` (a cheap test; False means "maybe")."""
        if not text.isascii():  # `(?i)` matches some non-ASCII letters as ASCII ones: run the patterns
            return False
        for secret in self._exact_values:  # a substring test per secret beats one search of them all
            if secret in text:
                return False
        if self._clue_words or self._clue_names is not None:
            lowered = text.lower()
            for word in self._clue_words:
                if word in lowered:
                    return False
            if self._clue_names is not None and self._clue_names.search(lowered[::-1]) is not None:
                return False
        return not any(p.search(text) is not None for p in self._unclued)

    def leaves_unchanged(self, texts: list[str]) -> bool:
        """True when `redact_text` returns every one of `texts` as it is (False means "maybe not").

        One search of them all, joined: each clue and secret is a plain string match (no anchors,
        no look-around), so it occurs in a part only if it occurs in the whole. A secret field name
        followed by `=` always matches the field names' clue, so a text `name + "="` here also
        vouches that `name` is no secret field. Caller-given patterns may be anchored: each text is
        then tested on its own."""
        if self._unclued:
            return all(self._clean(text) for text in texts)
        return self._clean("\n".join(texts))

    def _once(self, text: str) -> str:
        if self._exact is not None:
            text = self._exact.sub(MARK, text)
        for pattern in self._patterns:
            text = pattern.sub(_replacement, text)
        return text

    def redact_text(self, text: str) -> str:
        """`text` with every secret replaced by `[REDACTED]`."""
        if self._clean(text):
            return text
        for _ in range(_MAX_PASSES):
            new = self._once(text)
            if new == text:
                return text
            text = new
        return MARK  # a text that keeps producing matches is not worth the risk

    def is_secret_field(self, name: str) -> bool:
        return _normalize(name) in self.fields

    def redact(self, value: Any) -> Any:
        """A redacted copy of strings, dicts, lists and tuples (recursively); other values as they are."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                new_key = self.redact_text(key) if isinstance(key, str) else key
                if isinstance(key, str) and self.is_secret_field(key):
                    out[new_key] = MARK
                else:
                    out[new_key] = self.redact(item)
            return out
        if isinstance(value, list):
            return [self.redact(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.redact(item) for item in value)
        if isinstance(value, bytes | bytearray):
            return self.redact_text(bytes(value).decode("utf-8", "replace"))
        return value


def _names_before_separator(names: list[str]) -> re.Pattern[str] | None:
    """A search of reversed lowercased text for any of `names` (`_` standing for `_` or `-`)
    followed by `:` or `=`, optionally with a quote and spaces between: reversed, every match starts
    with `:` or `=`, which lets the regex engine skip straight to those characters instead of trying
    every name at every position (about ten times faster on a log line)."""
    if not names:
        return None
    loose = sorted({re.escape(name[::-1]).replace("_", "[_-]") for name in names}, key=len, reverse=True)
    return re.compile(rf"[:=]\s*[\"']?(?:{'|'.join(loose)})")


def _replacement(match: re.Match[str]) -> str:
    if match.re.groups >= 1 and match.group(1) is not None:
        return match.group(1) + MARK
    return MARK


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Redacts a record in place: message (with its args), exception and stack text, extras.

    The record leaves with `args=None` and `exc_info=None` but `exc_text` set, which every standard
    formatter prints, so no later formatter can re-render the unredacted originals.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what we can, redacted
            message = f"{record.msg!s} {record.args!r}"
        extras = [(name, value) for name, value in vars(record).items() if name not in _STANDARD_ATTRS]
        if not (record.exc_info or record.exc_text or record.stack_info):
            # Most records hold no secret: one search of every text proves it (see `_texts`), and
            # the record keeps its values as they are.
            texts = [message]
            if _texts(extras, texts) and self.redactor.leaves_unchanged(texts):
                record.msg, record.args, record.exc_info = message, None, None
                return True
        self._redact(record, message, extras)
        return True

    def _redact(self, record: logging.LogRecord, message: str, extras: list[tuple[str, Any]]) -> None:
        """The general way: every text through the redactor, every extra replaced by its redacted copy."""
        record.msg = self.redactor.redact_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redactor.redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact_text(record.stack_info)
        for name, value in extras:
            if self.redactor.is_secret_field(name):
                setattr(record, name, MARK)
            elif isinstance(value, str | Mapping | list | tuple | bytes):
                setattr(record, name, self.redactor.redact(value))


_SCALARS = frozenset({int, float, bool, type(None)})  # what `redact` returns as it is, the usual extras


def _texts(items: Iterable[tuple[Any, Any]], into: list[str]) -> bool:
    """Add to `into` what `Redactor.redact` would look at in these (name, value) pairs: `name=` for
    each string name (a text, and a name that may be a secret field), each string value, and the
    same within dicts, lists and tuples. False for a value that `redact` would return changed in
    type even when it holds no secret (bytes, other mappings and sequences): redact those."""
    add = into.append
    for name, value in items:
        if isinstance(name, str):
            add(name + "=")
        kind = type(value)
        if kind is str:
            add(value)
        elif kind in _SCALARS:
            continue
        elif kind is dict:
            if not _texts(value.items(), into):
                return False
        elif kind is list or kind is tuple:
            if not _texts(enumerate(value), into):
                return False
        elif isinstance(value, str):
            add(value)
        elif isinstance(value, Mapping | list | tuple | bytes | bytearray):
            return False
    return True
