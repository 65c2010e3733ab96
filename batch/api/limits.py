"""How much of an answer the client reads: every body is bounded, whatever the server sends.

A JSON answer is read up to ``body`` bytes (``EMG_MAX_BODY_MB``, default 64 MB), an error
answer up to ``error`` bytes (its message is all that is used), and a report download up to
``report`` bytes (``EMG_MAX_REPORT_MB``, default 2048 MB). A download may run past
``--timeout`` while its data keeps coming: each byte received moves its deadline on by
``1 / REPORT_MIN_RATE`` seconds, so a server trickling a few bytes a second is still cut off.
One MB is 1,048,576 bytes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from batch.errors import UsageError
from batch.text import quoted

MB = 1 << 20
BODY_ENV = "EMG_MAX_BODY_MB"
REPORT_ENV = "EMG_MAX_REPORT_MB"
#: Bytes per second a report download must average to be allowed past ``--timeout``.
REPORT_MIN_RATE = 128 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Size limits of one client, in bytes."""

    body: int = 64 * MB
    report: int = 2048 * MB
    error: int = 8 * 1024

    @classmethod
    def choose(
        cls,
        *,
        body_mb: float | None = None,
        report_mb: float | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> Limits:
        """The limits given (in MB), else from ``EMG_MAX_BODY_MB``/``EMG_MAX_REPORT_MB``,
        else the defaults; UsageError for a value that is not a positive number."""
        default = cls()
        return cls(
            body=_bytes(body_mb, "max_body_mb", env.get(BODY_ENV), BODY_ENV, default.body),
            report=_bytes(report_mb, "max_report_mb", env.get(REPORT_ENV), REPORT_ENV,
                          default.report),
        )


def _bytes(given: float | None, name: str, text: str | None, var: str, default: int) -> int:
    if given is not None:
        return _positive(given, name, repr(given))
    if text is None or not text.strip():
        return default
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    return _positive(value, var, quoted(text.strip()))


def _positive(mb: float, name: str, shown: str) -> int:
    if not math.isfinite(mb) or mb <= 0:
        raise UsageError(f"{name} must be a positive number of megabytes, got {shown}")
    return max(1, int(mb * MB))


def megabytes(size: int) -> str:
    """*size* bytes in MB, as the limits are written (``64 MB``, ``0.5 MB``)."""
    return f"{size / MB:g} MB"
