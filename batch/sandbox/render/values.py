"""Small conversions shared by the renderers: typed values out of a create body, dates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from batch.sandbox.state import rfc1123


def text(value: Any, default: str = "") -> str:
    """*value* when it is a string, else *default*."""
    return value if isinstance(value, str) else default


def flag(value: Any, default: bool = False) -> bool:
    """*value* when it is a boolean, else *default*."""
    return value if isinstance(value, bool) else default


def integer(value: Any) -> int | None:
    """An integer id, also when sent as a numeric string (as Emedgene's own script does)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def listed(value: Any) -> list[Any]:
    """*value* when it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def when(ts: float | None) -> str | None:
    """An RFC 1123 date, or None."""
    return rfc1123(ts) if ts is not None else None


def date_field(value: Any) -> str | None:
    """A ``YYYY-MM-DD`` date of the body as the API writes dates (RFC 1123); as sent when it is
    no calendar date (the server stores e.g. ``2023-02-30`` as given); None when absent."""
    if not isinstance(value, str) or not value:
        return None
    try:
        day = datetime.strptime(value.replace("/", "-"), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return value
    return rfc1123(day.timestamp())
