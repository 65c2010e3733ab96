"""Options of the pull commands: since when (``--since``) and which report types."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from batch.errors import UsageError

ALL_REPORTS = "all"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, *, now: datetime | None = None) -> str:
    """``24h``, ``7d``, ``30m`` (ago) or an ISO date/datetime, as an ISO 8601 UTC datetime.

    A date or datetime without a zone is read as UTC.
    """
    match = _DURATION.match(value)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        when = (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    else:
        try:
            when = datetime.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(
                f"--since {value!r}: expected a duration such as 24h, 7d, 30m, or an ISO date "
                "such as 2024-02-01 or 2024-02-01T08:00:00+01:00"
            ) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).replace(microsecond=0).isoformat()


def parse_report_types(values: Iterable[str]) -> tuple[str, ...]:
    """Report types from repeated or comma-separated options; ``("all",)`` means every type."""
    types: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip().lower()
            if item and item not in types:
                types.append(item)
    if not types:
        raise UsageError("--reports: name at least one report type (pdf, json, or all)")
    if ALL_REPORTS in types:
        return (ALL_REPORTS,)
    bad = [t for t in types if not re.fullmatch(r"[a-z0-9_-]+", t)]
    if bad:
        raise UsageError(f"--reports: not a report type: {', '.join(bad)}")
    return tuple(types)
