"""Words every stage uses in its messages: a count with its noun, a time span, a value clipped.

A cell may hold megabytes; a message quoting it whole would flood the terminal (and the log)
with patient data. Messages quote at most ``VALUE_LIMIT`` characters of a value, and say how
long the value was (a whole message from a server is cut to a hard cap by
``batch.errors.truncate``, where the errors that carry it live). Counts
read ``1 family``, ``2 families``; time spans ``12.3 s``, ``4 min 05 s`` (or, coarse,
``12 min``). One helper for each, importable by every stage.
"""

from __future__ import annotations

import math

#: Characters of a value that a message quotes.
VALUE_LIMIT = 100
#: Characters of a whole message (the values in it already cut).
MESSAGE_LIMIT = 400


def quoted(value: str, limit: int = VALUE_LIMIT) -> str:
    """*value* quoted (``repr``), cut after *limit* characters: ``'AAAA…' (10,485,760
    characters)``."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit] + '…'!r} ({len(value):,} characters)"


def clip(text: str, limit: int = VALUE_LIMIT) -> str:
    """*text* unquoted, cut after *limit* characters, with its length when cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def bounded_message(message: str, value: str | None = None) -> str:
    """A message with its copy of *value* cut, and cut as a whole at ``MESSAGE_LIMIT``."""
    if value is not None and len(value) > VALUE_LIMIT and value in message:
        message = message.replace(value, clip(value))
    return clip(message, MESSAGE_LIMIT)


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 family``, ``2 families``: a count with its noun."""
    if count == 1:
        return f"{count} {noun}"
    if many is None:
        consonant_y = noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u")
        many = noun[:-1] + "ies" if consonant_y else noun + "s"
    return f"{count} {many}"


def duration(seconds: float, *, coarse: bool = False) -> str:
    """A time span for people: ``12.3 s``, ``4 min 05 s``, ``2 h 07 min``; *coarse* (a token's
    lifetime, in whole units, either side of now): ``40 s``, ``12 min``, ``2 h 5 min``."""
    if coarse:
        return _coarse(abs(seconds))
    if not math.isfinite(seconds) or seconds < 0:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _coarse(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
