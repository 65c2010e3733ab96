"""Values quoted in messages, cut to a readable length.

A cell may hold megabytes; a message quoting it whole would flood the terminal (and the log)
with patient data. Messages quote at most ``VALUE_LIMIT`` characters of a value, and say how
long the value was.
"""

from __future__ import annotations

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


def shortened(text: str, limit: int = VALUE_LIMIT) -> str:
    """*text* unquoted, cut after *limit* characters, with its length when cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def bounded_message(message: str, value: str | None = None) -> str:
    """A message with its copy of *value* cut, and cut as a whole at ``MESSAGE_LIMIT``."""
    if value is not None and len(value) > VALUE_LIMIT and value in message:
        message = message.replace(value, shortened(value))
    return shortened(message, MESSAGE_LIMIT)
