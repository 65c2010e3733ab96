"""Request-rate limiters shared by every request of a client.

Both limiters space request starts evenly (GCRA "virtual scheduling" with no burst allowance):
each ``acquire`` takes the next free slot ``1/rate`` seconds after the previous one. Both
also hold a shared *not-before* time, so a server's ``Retry-After`` pauses every waiting
request, not just the one that received it.

* :class:`FixedRateLimiter` -- ``--rate R``: never more than R starts in any window.
* :class:`AdaptiveLimiter` -- no ``--rate``: AIMD on the allowed rate. It grows quickly
  while it has never been throttled (slow start), then additively; a 429 cuts it
  multiplicatively, once per reaction window (the 429s of one burst count once).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["AdaptiveLimiter", "FixedRateLimiter", "Limiter"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Limiter(Protocol):
    """What the client needs from a limiter."""

    @property
    def rate(self) -> float:
        """The current allowed rate, requests per second."""
        ...

    async def acquire(self) -> float:
        """Wait for the next slot; return the (monotonic) time the request starts."""
        ...

    def pause_until(self, when: float) -> None:
        """Hold every request until the monotonic time *when*."""
        ...

    def on_answer(self, sent_at: float) -> None:
        """An answer (of any status) arrived for a request started at *sent_at*."""
        ...

    def on_success(self) -> None:
        """A request was answered without throttling."""
        ...

    def on_throttle(self, sent_at: float) -> None:
        """A request sent at *sent_at* was throttled (429)."""
        ...


class _Gcra:
    """Even spacing plus a shared pause; the part both limiters have in common."""

    def __init__(
        self,
        rate: float,
        *,
        tolerance: float = 0.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._rate = float(rate)
        self._tolerance = tolerance
        self._clock = clock
        self._sleep = sleep
        self._tat = 0.0  # earliest start of the next request (GCRA theoretical arrival time)
        self._not_before = 0.0
        self._lock = asyncio.Lock()

    @property
    def rate(self) -> float:
        """The current allowed rate, requests per second."""
        return self._rate

    def pause_until(self, when: float) -> None:
        """Hold every request until *when*; a later pause extends an earlier one."""
        self._not_before = max(self._not_before, when)

    async def acquire(self) -> float:
        """Wait for the next evenly spaced slot after any pause; return the start time.

        Waiters queue on a FIFO lock and only the head computes its slot, so a new rate or
        pause applies to every waiter at once instead of to reservations made earlier.
        """
        async with self._lock:
            while True:
                now = self._clock()
                if now < self._not_before:
                    await self._sleep(self._not_before - now)
                    continue
                interval = 1.0 / self._rate
                if now < self._tat - self._tolerance:
                    await self._sleep(self._tat - now)
                    continue  # the rate or a pause may have changed while we slept
                # Keep to the schedule when we woke a little late (sleep overshoot would
                # otherwise add up and slow the run); restart it after an idle spell.
                slot = self._tat if now - self._tat <= interval else now
                self._tat = slot + interval
                self._note_start()
                return now

    def _note_start(self) -> None:
        """Hook for subclasses that measure the sending rate."""

    def on_answer(self, sent_at: float) -> None:
        """Nothing to learn from round trips by default."""


class FixedRateLimiter(_Gcra):
    """At most ``rate`` request starts per second, evenly spaced, with no burst."""

    def on_success(self) -> None:
        """Nothing to learn at a fixed rate."""

    def on_throttle(self, sent_at: float) -> None:
        """Nothing to adjust at a fixed rate; the ``Retry-After`` pause still applies."""

    def __repr__(self) -> str:
        return f"FixedRateLimiter(rate={self._rate:g})"


class AdaptiveLimiter(_Gcra):
    """AIMD on the request rate (no ``--rate``).

    Every ``interval`` seconds in which the client really used most of its allowance and saw
    no 429, the rate grows: by ``slow_start_factor`` until the first 429 (slow start, looking
    every two round trips, between ``min_window`` and half an ``interval``), then by
    ``increase`` requests per second, and by ``increase * probe`` once within 5% of the rate
    at which the server last pushed back. The first 429 halves the rate; later ones multiply it
    by ``decrease``, but only for requests sent after the last decrease: 429s of requests
    sent before it were caused by the old rate, so one burst counts once.
    """

    def __init__(
        self,
        *,
        initial: float = 20.0,
        minimum: float = 0.5,
        maximum: float = 5000.0,
        increase: float = 1.0,
        decrease: float = 0.85,
        slow_start_factor: float = 2.0,
        interval: float = 0.5,
        probe: float = 0.25,
        window: float = 5.0,
        min_window: float = 0.005,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 0 < decrease < 1:
            raise ValueError("decrease must lie in (0, 1)")
        if not 0 < minimum <= initial <= maximum:
            raise ValueError("need 0 < minimum <= initial <= maximum")
        # Up to 2 ms early: at high rates a sleep per request would cost more than it spaces.
        super().__init__(initial, tolerance=0.002, clock=clock, sleep=sleep)
        self.minimum = minimum
        self.maximum = maximum
        self.increase = increase
        self.decrease = decrease
        self.slow_start_factor = slow_start_factor
        self.interval = interval
        self._slow_start = True
        self._last_decrease = -1.0e18
        self._window_start = clock()
        self._window_starts = 0
        self._window_throttled = False
        self._ceiling: float | None = None
        self._recent: deque[float] = deque()
        self.window = window
        self.min_window = min_window
        self.probe = probe
        self.decreases = 0
        self._round_trip: float | None = None  # smoothed, seconds

    def _note_start(self) -> None:
        self._window_starts += 1
        now = self._clock()
        self._recent.append(now)
        while self._recent and self._recent[0] < now - self.window:
            self._recent.popleft()

    def measured_rate(self) -> float | None:
        """Requests actually started per second over the last ``window`` seconds."""
        if len(self._recent) < 2:
            return None
        span = self._clock() - self._recent[0]
        if span < self.window / 2:
            return None  # too little history to tell
        return len(self._recent) / span

    def on_answer(self, sent_at: float) -> None:
        """Keep a smoothed round-trip time (it sets how often slow start may grow)."""
        sample = max(0.0, self._clock() - sent_at)
        previous = self._round_trip
        self._round_trip = sample if previous is None else 0.8 * previous + 0.2 * sample

    def _slow_start_window(self) -> float:
        """Two round trips (every answer to the last step is in), within set bounds.

        A fast server's pace is found in a fraction of a second; a slow one is never asked
        to take a doubled rate before the answers at the current one have come back.
        """
        cap = self.interval / 2
        if self._round_trip is None:
            return cap
        return min(cap, max(self.min_window, 2 * self._round_trip))

    def on_success(self) -> None:
        """Grow the rate at the end of an interval that used its allowance without a 429."""
        now = self._clock()
        elapsed = now - self._window_start
        # Slow start looks more often: doubling per couple of round trips finds a fast
        # server's pace quickly, while the additive phase keeps its calmer step.
        if elapsed < (self._slow_start_window() if self._slow_start else self.interval):
            return
        # Only a client that is actually limited by its rate has learned anything about
        # the server; an idle one must not grow its allowance without bound.
        busy = self._window_starts >= 0.5 * self._rate * elapsed
        if busy and not self._window_throttled:
            self._set_rate(self._grown())
        self._window_start = now
        self._window_starts = 0
        self._window_throttled = False

    def _grown(self) -> float:
        """The next rate: fast in slow start, then additive, slowly near the last ceiling."""
        if self._slow_start:
            return self._rate * self.slow_start_factor
        if self._ceiling is not None and self._rate >= 0.95 * self._ceiling:
            # Close to where the server pushed back last time: probe gently, so 429s stay rare.
            return self._rate + self.increase * self.probe
        return self._rate + self.increase

    def on_throttle(self, sent_at: float) -> None:
        """Cut the rate once per reaction window."""
        self._window_throttled = True
        if sent_at < self._last_decrease:
            return
        # Leaving slow start, the rate has overshot by up to one growth step on top of
        # whatever burst the server's bucket allowed: halve it, as TCP does.
        factor = 0.5 if self._slow_start else self.decrease
        # Past slow start, cut from what was really sent, not from the allowance: after
        # Retry-After pauses the allowance can sit far above what the server accepts.
        measured = None if self._slow_start else self.measured_rate()
        base = self._rate if measured is None else min(self._rate, measured)
        self._ceiling = base  # where the server pushed back
        self._slow_start = False
        self._set_rate(base * factor)
        self._last_decrease = self._clock()
        self.decreases += 1

    def _set_rate(self, rate: float) -> None:
        self._rate = min(self.maximum, max(self.minimum, rate))

    def __repr__(self) -> str:
        return f"AdaptiveLimiter(rate={self._rate:.2f}, slow_start={self._slow_start})"
