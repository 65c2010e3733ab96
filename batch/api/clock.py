"""The server's clock, as its answers tell it: the ``Date`` header of every answer.

Whether a case was made by a create whose answer was lost is decided from the server's own
times (the case's ``created`` against the server's time when the create began), never from the
workstation's clock, which may be minutes off. The ``Date`` header (RFC 9110 §6.6.1; every
HTTP server sends it, second resolution) gives the server's time; between answers it is carried
forward with the monotonic clock, which a wrong wall clock does not move.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

#: How far apart the two clocks may be before a run says so.
SKEW_WARNING = 60.0


class ServerClock:
    """The latest ``Date`` an answer carried, and the local clocks when it arrived."""

    __slots__ = ("_header", "_monotonic", "_offset", "_server")

    def __init__(self) -> None:
        self._header: str | None = None
        self._server: float | None = None
        self._monotonic = 0.0
        self._offset: float | None = None

    def observe(self, header: str | None) -> None:
        """Note the ``Date`` header of an answer that just arrived (unreadable ones ignored)."""
        if not header:
            return
        if header == self._header:  # one parse a second at most: the header's resolution
            return
        try:
            server = parsedate_to_datetime(header).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        self._header, self._server, self._monotonic = header, server, time.monotonic()
        # the header is truncated to the second: its midpoint is the better estimate
        self._offset = server + 0.5 - time.time()

    def now(self) -> float | None:
        """The server's time now (a lower bound, to the second), or None before any answer
        carried a ``Date``."""
        if self._server is None:
            return None
        return self._server + (time.monotonic() - self._monotonic)

    @property
    def offset(self) -> float | None:
        """Seconds the server's clock is ahead of ours (negative: behind); None when unknown."""
        return self._offset

    def skew_warning(self) -> str | None:
        """A sentence when the two clocks differ by more than a minute, else None."""
        offset = self._offset
        if offset is None or abs(offset) <= SKEW_WARNING:
            return None
        way = "behind" if offset > 0 else "ahead of"
        return (f"warning: this computer's clock is {abs(offset) / 60:.1f} minutes {way} the "
                "server's; emg-batch goes by the server's clock to recognise its cases")
