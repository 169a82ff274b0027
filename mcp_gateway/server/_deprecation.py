"""A tool version's lifecycle in HTTP terms: which version answered, and what deprecation says.

    X-Tool-Name, X-Tool-Version   on every REST answer: the version that answered
    Deprecation: @<unix seconds>  RFC 9745: when it was deprecated (`deprecated_on`, else when
                                  this gateway loaded the config that deprecates it)
    Sunset: <HTTP-date>           RFC 8594: when it will be (or was) retired
    Link: </v1/tools/X>; rel="successor-version"   RFC 5829: what to call instead

Links are relative references (resolved against the request URL), so they hold behind proxies.
"""

from __future__ import annotations

import datetime
from email.utils import format_datetime
from urllib.parse import quote

__all__ = ["retired_headers", "version_headers"]


def _midnight(day: datetime.date) -> datetime.datetime:
    return datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc)


def _sunset_and_link(sunset: datetime.date | None, successor: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if sunset is not None:
        headers["Sunset"] = format_datetime(_midnight(sunset), usegmt=True)
    if successor:
        headers["Link"] = f'</v1/tools/{quote(successor, safe="@.")}>; rel="successor-version"'
    return headers


def version_headers(tool: object, successor: str | None, *, loaded_at: float) -> dict[str, str]:
    """Headers of a REST answer produced by `tool` (a PromptTool)."""
    config = tool.config  # type: ignore[attr-defined]
    headers = {"X-Tool-Name": config.name, "X-Tool-Version": config.version}
    if config.status == "deprecated":
        since = _midnight(config.deprecated_on).timestamp() if config.deprecated_on else loaded_at
        headers["Deprecation"] = f"@{int(since)}"
        headers.update(_sunset_and_link(config.sunset, successor))
    return headers


def retired_headers(successor: str | None, sunset: datetime.date | None) -> dict[str, str]:
    """Headers of the 410 Gone a retired tool answers with."""
    return _sunset_and_link(sunset, successor)
