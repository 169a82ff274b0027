"""Model prices and exact cost: a bundled, dated table (`prices.json`) under the config's `prices:`.

Prices are USD per million tokens, kept as `Decimal` so that costs add up exactly. A model that
no table knows has no price: its cost is `None` (unknown), never 0.

Each bundled entry says when it was checked (`as_of`), against what (`source`) and how sure it is
(`status`): "verified" (the provider's own published prices), "secondary" (third-party copies of
them that agree), "unverified" (no source could confirm it), or "fixed" (free by definition: the
offline mock). `price_warning` turns an unknown, unverified or stale (> 180 days) price into a
warning for `mcp-gateway validate`.

Cost of one answer, from normalised `Usage` (whose `input_tokens` include cached tokens):

    (input - cache_read - cache_write) x input + cache_read x cache_read
        + cache_write x cache_write + output x output             (all / 1,000,000)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any

from ..providers import Message, Usage

__all__ = ["MILLION_TOKENS", "STALE_AFTER_DAYS", "Price", "PriceTable", "cost_of", "input_token_bound",
           "price_warning"]

MILLION_TOKENS = Decimal(1_000_000)
STALE_AFTER_DAYS = 180
"""A bundled price checked longer ago than this is reported as stale."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens. `source` is "bundled" or "config"; `as_of` dates a bundled price and
    `status` says how it was checked (see the module docstring)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    source: str = "bundled"
    as_of: str | None = None
    status: str | None = None

    @classmethod
    def of(cls, entry: Mapping[str, Any], *, source: str, as_of: str | None = None) -> Price:
        """From a table entry or config value; a missing cache price is the input price."""
        def dec(value: Any) -> Decimal:
            if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
                raise ValueError(f"a price must be a number, not {value!r}")
            number = Decimal(str(value))  # str(): the decimal the user wrote, not the float's binary value
            if not number.is_finite() or number < 0:
                raise ValueError(f"a price must be a finite number >= 0, not {value!r}")
            return number

        base = dec(entry["input"])
        read, write = entry.get("cache_read"), entry.get("cache_write")
        return cls(
            input=base,
            output=dec(entry["output"]),
            cache_read=base if read is None else dec(read),
            cache_write=base if write is None else dec(write),
            source=source,
            as_of=entry.get("as_of", as_of),
            status=entry.get("status", "unverified") if source == "bundled" else None,
        )

    def worst_input(self) -> Decimal:
        """The highest price an input token can cost (a cache write may cost more than plain input)."""
        return max(self.input, self.cache_write, self.cache_read)


def cost_of(usage: Usage, price: Price | None) -> Decimal | None:
    """Exact USD cost of `usage` at `price`; None when the price is unknown."""
    if price is None:
        return None
    read = min(max(usage.cache_read_tokens, 0), max(usage.input_tokens, 0))
    write = min(max(usage.cache_write_tokens, 0), max(usage.input_tokens, 0) - read)
    plain = max(usage.input_tokens, 0) - read - write
    total = (
        plain * price.input
        + read * price.cache_read
        + write * price.cache_write
        + max(usage.output_tokens, 0) * price.output
    )
    return total / MILLION_TOKENS


def price_warning(price: Price | None, today: date) -> str | None:
    """Why a target's price should not be trusted as is, or None: unknown, unverified or stale.

    Prices from the config are the operator's own and never warned about."""
    if price is None:
        return "no price is known: its cost is reported as unknown (add it under `prices:`)"
    if price.source != "bundled" or price.status == "fixed":
        return None
    if price.status == "unverified":
        return (f"the bundled price (as of {price.as_of}) is unverified: no published source confirmed it; "
                "check it and set it under `prices:`")
    if price.as_of is not None:
        age = (today - date.fromisoformat(price.as_of)).days
        if age > STALE_AFTER_DAYS:
            return (f"the bundled price was checked on {price.as_of}, {age} days ago (stale after "
                    f"{STALE_AFTER_DAYS}); check it and set it under `prices:` if it changed")
    return None


def input_token_bound(messages: tuple[Message, ...], output_schema: Mapping[str, Any] | None = None) -> int:
    """An upper bound on the input tokens of a request, for budget reservations.

    Byte-level tokenizers never make more tokens than UTF-8 bytes, so bytes (plus a per-message
    allowance for role markers and the chat template) bound the count from above. The output schema
    counts too: providers send it to the model as part of the prompt.
    """
    total = 64
    for message in messages:
        total += len(message.content.encode("utf-8")) + 16
    if output_schema is not None:
        total += len(json.dumps(output_schema, ensure_ascii=False).encode("utf-8"))
    return total


class PriceTable:
    """Looks a target's price up: config by `<provider name>/<model>`, config by model, the bundled
    table by model, then the bundled price of the provider kind (the offline `mock` kind is free)."""

    def __init__(
        self,
        models: Mapping[str, Price],
        *,
        kinds: Mapping[str, Price] | None = None,
        overrides: Mapping[str, Price] | None = None,
        as_of: str | None = None,
    ) -> None:
        self._models = dict(models)
        self._kinds = dict(kinds or {})
        self._overrides = dict(overrides or {})
        self.as_of = as_of

    @classmethod
    def bundled(cls) -> PriceTable:
        raw = json.loads(resources.files(__package__).joinpath("prices.json").read_text(encoding="utf-8"))
        as_of = raw.get("as_of")
        models = {name: Price.of(e, source="bundled", as_of=as_of) for name, e in raw["models"].items()}
        kinds = {name: Price.of(e, source="bundled", as_of=as_of) for name, e in raw.get("kinds", {}).items()}
        return cls(models, kinds=kinds, as_of=as_of)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any] | Any]) -> PriceTable:
        """This table with config prices on top (values: mappings or objects with the four fields)."""
        extra: dict[str, Price] = {}
        for key, value in overrides.items():
            entry = value if isinstance(value, Mapping) else {
                "input": value.input, "output": value.output,
                "cache_read": value.cache_read, "cache_write": value.cache_write,
            }
            extra[key] = Price.of(entry, source="config")
        return PriceTable(self._models, kinds=self._kinds, overrides={**self._overrides, **extra}, as_of=self.as_of)

    def lookup(self, model: str, *, provider: str | None = None, kind: str | None = None) -> Price | None:
        if provider is not None and (found := self._overrides.get(f"{provider}/{model}")) is not None:
            return found
        if (found := self._overrides.get(model)) is not None:
            return found
        if (found := self._models.get(model)) is not None:
            return found
        if kind is not None:
            return self._kinds.get(kind)
        return None

    def __len__(self) -> int:
        return len(self._models)
