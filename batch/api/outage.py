"""The outage breaker: while a server that has answered before looks down, hold every request.

Without it, each request would spend its own attempts and the run's retry budget on a server
that is down for everyone; with it, the whole pool waits on the limiter and probes again.
"""

from __future__ import annotations

import logging
import time

from batch.api.limiter import Limiter
from batch.errors import ConnectError, ServerError, TransientError

log = logging.getLogger(__name__)


class Outage:
    """Holds every request while a server that has answered before looks down.

    After ``threshold`` outage failures in a row (503/502/504 or a refused connection), every
    request waits on the limiter for a pause that doubles from ``first`` up to ``longest``
    seconds; then the waiting requests probe again. Failures of requests sent before a pause
    began belong to it and do not count again. A server that never answered (a wrong host)
    is not held: its requests fail after the normal retries.
    """

    def __init__(self, limiter: Limiter, *, enabled: bool, threshold: int = 3,
                 first: float = 1.0, longest: float = 4.0) -> None:
        self._limiter = limiter
        self._enabled = enabled
        self.threshold = threshold
        self.first = first
        self.longest = longest
        self._seen_success = False
        self._streak = 0
        self._pause = 0.0
        self._until = 0.0
        self.pauses = 0

    def hold(self, err: TransientError) -> bool:
        """Record an outage failure; True when the request should wait out the outage."""
        down = isinstance(err, ConnectError) or (
            isinstance(err, ServerError) and err.status in (502, 503, 504))
        if not (self._enabled and self._seen_success and down):
            return False
        now = time.monotonic()
        if now < self._until:
            return True
        self._streak += 1
        if self._streak < self.threshold:
            return False
        self._pause = min(self.longest, self._pause * 2 if self._pause else self.first)
        self._until = now + self._pause
        self._limiter.pause_until(self._until)
        self.pauses += 1
        log.warning("server unavailable: holding every request for %.0f s", self._pause)
        return True

    def success(self) -> None:
        """An answer: the server is up."""
        self._seen_success = True
        self._streak = 0
        self._pause = 0.0
