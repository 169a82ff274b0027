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
its neighbours); dict keys are redacted like any string. `RedactingFilter` applies a Redactor to log
records: the formatted message, the exception and stack text, and every `extra` attribute. Attach
it to handlers (handler filters see records propagated from child loggers; logger filters do not).
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

# Each pattern keeps group 1 (a harmless prefix) and replaces the rest with MARK. Its triggers are
# lowercase texts of which a match always contains one (`_screen`): a text with none is left as is.
_SHAPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    # header lines / dict reprs: Authorization: Bearer x, "x-api-key": "x", cookie=x
    (r"(?i)((?:proxy-)?authorization[\"']?+\s*+[:=]\s*+[\"']?+(?:(?:bearer|basic|token|digest)\s++)?+)(?!\[REDACTED\])[^\s\"',;}\]]+",
     ("authorization",)),
    (r"(?i)((?:x-api-key|api-key|x-goog-api-key|x-auth-token|cookie)[\"']?\s*[:=]\s*[\"']?)(?!\[REDACTED\])[^\s\"',;}\]]+",
     ("api-key", "x-auth-token", "cookie")),
    # bare bearer tokens in prose
    (r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*", ("bearer",)),
    # query parameters
    (r"(?i)([?&;](?:api[_-]?key|key|token|access_token|auth|secret|password|sig|signature)=)(?!\[REDACTED\])[^&\s#\"']+",
     ("key", "token", "auth", "secret", "password", "sig")),
    # our own API keys: keep the (public) key id
    (r"(mgw_[0-9a-f]{16}_)[0-9A-Za-z]+", ("mgw_",)),
    (r"(mgw_)(?![0-9a-f]{16}_\[REDACTED\])[0-9A-Za-z_]{8,}", ("mgw_",)),
    # provider keys: sk-..., sk-proj-..., sk-ant-...
    (r"(\bsk-)[A-Za-z0-9_\-]{8,}", ("sk-",)),
    # JWTs (header.payload.signature; the header always starts with eyJ)
    (r"()\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*", ("eyj",)),
)
# The only characters outside ASCII that an (?i) pattern matches to an ASCII one (U+0130 and U+0131
# to i, U+017F to s, U+212A to k): folded before the trigger check, so it never misses a match.
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def _trigger_index(screened: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]
                   ) -> tuple[re.Pattern[str], dict[str, frozenset[int]]]:
    """A pattern finding, at each position of a text, the longest trigger starting there, and for
    each trigger the patterns it admits: those with a trigger inside it (a shorter trigger starting
    at the same position is a prefix of the longer one found)."""
    triggers = sorted({t for _, found in screened for t in found}, key=lambda t: (-len(t), t))
    admits = {big: frozenset(i for i, (_, found) in enumerate(screened) if any(t in big for t in found))
              for big in triggers}
    finder = re.compile("(?=(" + "|".join(map(re.escape, triggers)) + "))" if triggers else "(?!)")
    return finder, admits


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
        screened: list[tuple[re.Pattern[str], tuple[str, ...]]] = []
        if shapes:
            screened += [(re.compile(p), tuple(_normalize(t) for t in triggers)) for p, triggers in _SHAPES]
        if self.fields:
            names = "|".join(sorted(map(re.escape, self.fields), key=len, reverse=True))
            loose = names.replace("_", "[_-]")
            screened.append((re.compile(
                rf"(?i)((?<![A-Za-z0-9])[\"']?(?:{loose})[\"']?+\s*+[:=]\s*+[\"']?+"
                rf"(?:(?:bearer|basic|token|digest)\s++)?+)(?!\[REDACTED\])[^\s\"',;&}}\]]+"),
                tuple(sorted(self.fields))))
        self._screened = tuple(screened)
        self._triggers, self._by_trigger = _trigger_index(self._screened)
        self._extra = tuple(p if isinstance(p, re.Pattern) else re.compile(p) for p in patterns)

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        """A Redactor that also knows `secrets` (e.g. after a config reload adds provider keys)."""
        clone = Redactor.__new__(Redactor)
        merged = sorted(self._exact_values | {s for s in secrets if isinstance(s, str)
                                              and len(s) >= _MIN_SECRET_LENGTH}, key=lambda s: (-len(s), s))
        clone._exact = re.compile("|".join(map(re.escape, merged))) if merged else None
        clone._exact_values = frozenset(merged)
        clone.fields = self.fields
        clone._screened, clone._extra = self._screened, self._extra
        clone._triggers, clone._by_trigger = self._triggers, self._by_trigger
        return clone

    def _once(self, text: str, patterns: tuple[re.Pattern[str], ...]) -> str:
        if self._exact is not None:
            text = self._exact.sub(MARK, text)
        for pattern in patterns:
            text = pattern.sub(_replacement, text)
        return text

    def redact_text(self, text: str) -> str:
        """`text` with every secret replaced by `[REDACTED]`."""
        patterns = self._candidates(text)
        if not patterns and (self._exact is None or self._exact.search(text) is None):
            return text
        for _ in range(_MAX_PASSES):
            new = self._once(text, patterns)
            if new == text:
                return text
            text = new
        return MARK  # a text that keeps producing matches is not worth the risk

    def _candidates(self, text: str) -> tuple[re.Pattern[str], ...]:
        """The patterns, in order, that can match `text`: those with a trigger in it, and every extra
        one. Most texts a log line carries hold no secret, and a few substring checks cost far less
        than running every pattern. A replacement never adds a trigger (`[REDACTED]` holds none and
        its brackets split its neighbours), so the candidates of a text stay those of its rewrites."""
        folded = _normalize(text if text.isascii() else text.translate(_FOLD))
        found = self._triggers.findall(folded)
        if not found:
            return self._extra
        wanted: set[int] = set()
        for trigger in found:
            wanted.update(self._by_trigger[trigger])
        return tuple(self._screened[i][0] for i in sorted(wanted)) + self._extra

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
        record.msg = self.redactor.redact_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redactor.redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact_text(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRS:
                if self.redactor.is_secret_field(name):
                    setattr(record, name, MARK)
                elif isinstance(value, str | Mapping | list | tuple | bytes):
                    setattr(record, name, self.redactor.redact(value))
        return True
