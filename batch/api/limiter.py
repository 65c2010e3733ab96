"""Request rate: the fixed and adaptive limiters, what a server's rate-limit headers say, and
the token bucket its answers imply.

The server's token bucket as its answers show it: the slowest bucket that accepted them all.

A server that limits with a token bucket answers 429 only once the bucket is empty, so the
first 429 comes late: after the burst the bucket held at the start. The send times of the
requests it accepted up to then bound its rate from below: a bucket refilled more slowly
could not have let them all through. :func:`slowest_rate` finds that bound, assuming the
bucket holds ``burst`` seconds of its rate (one second: the sandbox, and a common setting).

Between two 429s the bucket goes from empty to empty, so what it accepted in between shows its
rate whatever its size, as long as it never filled up (a client sending at or above the rate
never lets it); a bucket that did fill up, or holds more than assumed, only makes the bound
lower: the client then sends a little slower than it could, and never faster.

What a server's rate-limit headers say: its rate, what is left, and when it comes back.

Emedgene documents no rate-limit headers (inferred), so every common form is
read and none is required: the IETF fields (``RateLimit-Policy: 10;w=1`` and its later
structured form ``"default";q=10;w=1``; ``RateLimit-Limit``/``-Remaining``/``-Reset``, or
``RateLimit: "default";r=5;t=1``) and the older ``X-RateLimit-Limit``/``-Remaining``/``-Reset``
(the reset in seconds, or a Unix time as some servers send it). Without any of them the
limiter finds the rate by probing (``AdaptiveLimiter``).

A policy (a quota ``q`` per window ``w`` seconds) gives the rate, ``q / w``; a limit with no
window gives none (a minute's limit read as a second's would be 60 times too fast). What is
left and when it comes back bound the next few requests.

Request-rate limiters shared by every request of a client.

Both limiters space request starts evenly (GCRA "virtual scheduling" with no burst allowance):
each ``acquire`` takes the next free slot ``1/rate`` seconds after the previous one. Both
also hold a shared *not-before* time, so a server's ``Retry-After`` pauses every waiting
request, not just the one that received it.

* :class:`FixedRateLimiter` -- ``--rate R``: never more than R starts in any window.
* :class:`AdaptiveLimiter` -- no ``--rate``: the rate a server's rate-limit headers give, or
  else the one its 429s show: slow start up to the first 429, then just under the rate of the
  token bucket that the answers so far imply (``slowest_rate``), probed gently upwards.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "HEADERS",
    "AdaptiveLimiter",
    "FixedRateLimiter",
    "Limiter",
    "Quota",
    "fastest_rate",
    "read_quota",
    "slowest_rate",
]

#: Seconds a request may seem to have come early: the jitter between the client's reading of
#: its clock at send time and the request's arrival at the server (the event loops of both).
JITTER = 0.01
#: Halvings of the range (on a log scale: 0.1 to 5000 to within 0.01 %).
_STEPS = 24


def level_at(rate: float, sends: Sequence[float], until: float, *, start: float, full: bool,
             burst: float) -> float | None:
    """Tokens a bucket of *rate* (holding ``max(1, rate * burst)``; full or empty at *start*)
    holds at *until*, having accepted every request sent at *sends* (ascending, after *start*);
    None when it could not have accepted them all."""
    capacity = max(1.0, rate * burst)
    # "Empty" at a 429: less than a token was left; assume the most, for the slowest rate.
    level, stamp = (capacity if full else 1.0), start
    for sent in sends:
        level = min(capacity, level + (sent - stamp) * rate)
        stamp = sent
        if level < 1.0 - rate * JITTER:
            return None
        level -= 1.0
    return min(capacity, level + max(0.0, until - stamp) * rate)


def accepts(rate: float, sends: Sequence[float], *, start: float, full: bool,
            burst: float) -> bool:
    """Whether a bucket of *rate* accepts every request sent at *sends* (see ``level_at``)."""
    until = sends[-1] if sends else start
    return level_at(rate, sends, until, start=start, full=full, burst=burst) is not None


def slowest_rate(sends: Sequence[float], *, start: float, full: bool, burst: float = 1.0,
                 low: float = 0.1, high: float = 5000.0) -> float:
    """The slowest rate in [*low*, *high*] at which a bucket accepts every send (bisection:
    a faster bucket accepts whatever a slower one does). Cost: ``_STEPS`` passes over
    *sends*, so callers keep them few."""
    if accepts(low, sends, start=start, full=full, burst=burst):
        return low
    for _ in range(_STEPS):
        middle = (low * high) ** 0.5
        if accepts(middle, sends, start=start, full=full, burst=burst):
            high = middle
        else:
            low = middle
    return high


def fastest_rate(sends: Sequence[float], refused: float, *, start: float, full: bool,
                 burst: float = 1.0, low: float = 0.1, high: float = 5000.0) -> float:
    """The fastest rate in [*low*, *high*] at which a bucket that accepted *sends* would still
    have had less than a token for the request sent at *refused*: a bound from above."""
    def empty(rate: float) -> bool:
        level = level_at(rate, sends, refused, start=start, full=full, burst=burst)
        return level is None or level < 1.0 + rate * JITTER
    if not empty(low):
        return low
    for _ in range(_STEPS):
        middle = (low * high) ** 0.5
        if empty(middle):
            low = middle
        else:
            high = middle
    return low


#: A reset this large is a Unix time, not a number of seconds (no window lasts 30 years).
EPOCH_FROM = 1.0e9
#: Every header read here (a fast check that an answer carries none).
HEADERS = ("RateLimit-Policy", "RateLimit", "RateLimit-Limit", "RateLimit-Remaining",
           "RateLimit-Reset", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


@dataclass(frozen=True, slots=True)
class Quota:
    """One answer's rate-limit headers: the policy's rate (requests per second), the requests
    left, and the seconds until they come back; None where the headers do not say."""

    rate: float | None = None
    remaining: int | None = None
    reset: float | None = None


def _number(text: str) -> float | None:
    """A finite, non-negative number, else None."""
    try:
        value = float(text.strip().strip('"'))
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _items(value: str) -> list[tuple[float | None, dict[str, float]]]:
    """Comma-separated items of ``value;key=number;...`` (the first part may be a name)."""
    items = []
    for item in value.split(","):
        head, *params = item.split(";")
        numbers = {}
        for param in params:
            key, _, text = param.partition("=")
            number = _number(text)
            if number is not None:
                numbers[key.strip().lower()] = number
        items.append((_number(head), numbers))
    return items


def policy_rate(value: str) -> float | None:
    """The slowest rate of the policies in *value* (``10;w=1`` or ``"name";q=10;w=1``)."""
    rates = []
    for head, params in _items(value):
        quota, window = params.get("q", head), params.get("w")
        if quota is not None and window:
            rates.append(quota / window)
    return min(rates) if rates else None


def _first(value: str | None, key: str) -> float | None:
    """The first item's number, or its *key* parameter (``RateLimit: "default";r=5;t=1``)."""
    if value is None:
        return None
    head, params = _items(value)[0]
    return params.get(key, head)


def _reset(value: float | None, now: float) -> float | None:
    """Seconds until the quota comes back (a Unix time made relative to *now*)."""
    if value is None:
        return None
    return max(0.0, value - now) if value >= EPOCH_FROM else value


def read_quota(headers: Mapping[str, str], *, wall: Callable[[], float] = time.time,
               ) -> Quota | None:
    """The quota an answer's headers state (IETF fields before ``X-`` ones); None without any.

    *headers* must look names up case-insensitively, as aiohttp's do.
    """
    if not any(name in headers for name in HEADERS):
        return None
    get = headers.get
    rate = None
    for name in ("RateLimit-Policy", "RateLimit-Limit"):  # a draft put policies in the limit
        if rate is None and (value := get(name)) is not None:
            rate = policy_rate(value)
    combined = get("RateLimit")
    remaining = _first(get("RateLimit-Remaining") or get("X-RateLimit-Remaining"), "r")
    reset = _first(get("RateLimit-Reset") or get("X-RateLimit-Reset"), "t")
    if combined is not None:
        remaining = _first(combined, "r") if remaining is None else remaining
        reset = _first(combined, "t") if reset is None else reset
    return Quota(rate=rate, remaining=None if remaining is None else int(remaining),
                 reset=_reset(reset, wall()))


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

    def on_answer(self, sent_at: float, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> None:
        """An answer of *status* (any) with *headers* came for a request started at *sent_at*."""
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
                interval = 1.0 / self._pace()
                if now < self._tat - self._tolerance:
                    await self._sleep(self._tat - now)
                    continue  # the rate or a pause may have changed while we slept
                # Keep to the schedule when we woke a little late (sleep overshoot would
                # otherwise add up and slow the run); restart it after an idle spell.
                slot = self._tat if now - self._tat <= interval else now
                self._tat = slot + interval
                self._note_start()
                return now

    def _pace(self) -> float:
        """The rate requests are spaced at now."""
        return self._rate

    def _note_start(self) -> None:
        """Hook for subclasses that measure the sending rate."""

    def on_answer(self, sent_at: float, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> None:
        """Nothing to learn from answers by default (``--rate`` is the user's to set)."""


class FixedRateLimiter(_Gcra):
    """At most ``rate`` request starts per second, evenly spaced, with no burst."""

    def on_success(self) -> None:
        """Nothing to learn at a fixed rate."""

    def on_throttle(self, sent_at: float) -> None:
        """Nothing to adjust at a fixed rate; the ``Retry-After`` pause still applies."""

    def __repr__(self) -> str:
        return f"FixedRateLimiter(rate={self._rate:g})"


class AdaptiveLimiter(_Gcra):
    """The rate found from the server's answers (no ``--rate``).

    A server's rate-limit headers, when it sends them (``Quota``), give the rate at once: a
    policy's rate is used as it is (less ``margin``); what is left and when it comes back bound
    the pace until then. Without them the rate is probed:

    * *slow start*: from ``initial``, the rate grows by ``slow_start_factor`` every window
      (``window_trips`` round trips, between ``min_window`` and half an ``interval``) while
      the client really uses it, until the first 429. A server's bucket hides its rate
      until its burst is spent, so growth is gentle: the faster it grows, the further past
      the rate the client is when the first 429 comes, and every request then in flight is
      refused too;
    * at a 429, the rate becomes that of the slowest token bucket that could have accepted
      every request answered since the last 429 (or since the start, when the bucket held
      ``burst`` seconds of its rate: ``slowest_rate``), less ``margin``: just under the server's.
      While every request waits out the ``Retry-After``, the bucket fills up again: half of
      that is spent in the second after the pause (``refill_share``), evenly spaced;
    * then it holds and probes: ``probe`` more after ``probe_every`` requests (or
      ``probe_windows`` windows) at full pace without a 429, twice as far at each clean step
      up to ``probe_max``. A right estimate is passed only slowly, so 429s stay a small share
      of the requests whatever the rate; a cautious one (a server with less burst than
      assumed) is left soon enough.

    The 429s of requests sent before the last cut were caused by the old rate: one burst
    counts once. A 429 with nothing answered since the last one to measure from halves the
    rate in slow start, and cuts it by ``decrease`` after.
    """

    def __init__(
        self,
        *,
        initial: float = 20.0,
        minimum: float = 0.5,
        maximum: float = 5000.0,
        decrease: float = 0.85,
        slow_start_factor: float = 1.25,
        interval: float = 1.0,
        min_window: float = 0.005,
        window_trips: float = 5.0,
        margin: float = 0.02,
        probe: float = 0.01,
        probe_max: float = 0.25,
        probe_every: int = 200,
        probe_windows: int = 30,
        burst: float = 1.0,
        history: int = 2048,
        refill_share: float = 0.5,
        max_pause: float = 120.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        wall: Clock = time.time,
    ) -> None:
        if not 0 < decrease < 1:
            raise ValueError("decrease must lie in (0, 1)")
        if not 0 < minimum <= initial <= maximum:
            raise ValueError("need 0 < minimum <= initial <= maximum")
        # Up to 2 ms early: at high rates a sleep per request would cost more than it spaces.
        super().__init__(initial, tolerance=0.002, clock=clock, sleep=sleep)
        self.minimum, self.maximum, self.decrease = minimum, maximum, decrease
        self.slow_start_factor, self.interval, self.min_window = (
            slow_start_factor, interval, min_window)
        self.window_trips = window_trips
        self.margin, self.probe, self.probe_every = margin, probe, probe_every
        self.probe_max, self.probe_windows = probe_max, probe_windows
        self._step = probe
        self.burst, self.history, self.max_pause = burst, history, max_pause
        self.refill_share = refill_share
        self._wall = wall
        self._slow_start = True
        self._last_decrease = -1.0e18
        self._window_start = clock()
        self._window_starts = 0
        self._window_throttled = False
        self._clean = 0  # requests sent at full pace since the last change of rate
        self._clean_windows = 0  # and the busy windows they took
        self._accepted: deque[float] = deque()  # send times answered without a 429
        self._anchor: float | None = None  # the bucket was full (start) or empty (a 429) here
        self._anchor_full = True
        self._round_trip: float | None = None  # smoothed, seconds
        self._advertised: float | None = None  # a rate-limit policy's rate
        self._cap = (float("inf"), 0.0)  # (rate, until): what is left until it comes back
        self._boost = 0.0  # added to the rate for a second after a pause (the bucket refilled)
        self.decreases = 0
        self.estimate: float | None = None  # the server's rate, as the last 429 showed it

    @property
    def advertised(self) -> float | None:
        """The rate of the server's rate-limit policy, when its answers carried one."""
        return self._advertised

    # -- pacing ---------------------------------------------------------------------------

    def _pace(self) -> float:
        now, rate = self._clock(), self._rate
        if self._boost:
            if now < self._not_before + self.burst:
                rate += self._boost
            else:
                self._boost = 0.0
        cap, until = self._cap
        if cap < rate and now < until:
            return max(cap, self.minimum)
        return rate

    def _note_start(self) -> None:
        self._window_starts += 1

    # -- answers --------------------------------------------------------------------------

    def on_answer(self, sent_at: float, status: int = 200,
                  headers: Mapping[str, str] | None = None) -> None:
        """Learn from one answer: its round trip, whether it was accepted, its quota headers."""
        sample = max(0.0, self._clock() - sent_at)
        previous = self._round_trip
        self._round_trip = sample if previous is None else 0.8 * previous + 0.2 * sample
        if status != 429:
            self._accept(sent_at)
        if headers:
            quota = read_quota(headers, wall=self._wall)
            if quota is not None:
                self._follow(quota)

    def _accept(self, sent_at: float) -> None:
        if self._anchor is None or (self._anchor_full and sent_at < self._anchor):
            self._anchor, self._anchor_full = sent_at, True  # the start: answers may cross
        self._accepted.append(sent_at)
        if len(self._accepted) > self.history:
            # Forget the oldest; assuming the bucket full there can only slow the estimate.
            self._anchor, self._anchor_full = self._accepted.popleft(), True

    def _follow(self, quota: Quota) -> None:
        """Use what a server's rate-limit headers say."""
        now = self._clock()
        if quota.rate is not None:
            changed, self._advertised = quota.rate != self._advertised, quota.rate
            pace = quota.rate * (1 - self.margin)
            if changed or self._slow_start or self._rate > pace:
                self._slow_start = False
                self._set_rate(pace)
        reset = min(quota.reset or 0.0, self.max_pause)
        if quota.remaining is None or reset <= 0:
            return
        if quota.remaining <= 0:
            self.pause_until(now + reset)
        elif self._advertised is None:
            self._cap = (quota.remaining / reset, now + reset)

    # -- growth ---------------------------------------------------------------------------

    def _slow_start_window(self) -> float:
        """``window_trips`` round trips, within set bounds.

        The answers at the current rate are all back before it grows again, and the requests
        in flight when the first 429 comes (all refused with it) stay few: growth per second
        is slower the longer the round trip, and fast on a near server with no limit.
        """
        cap = self.interval / 2
        if self._round_trip is None:
            return cap
        return min(cap, max(self.min_window, self.window_trips * self._round_trip))

    def on_success(self) -> None:
        """Grow the rate at the end of a window that used its allowance without a 429."""
        now = self._clock()
        elapsed = now - self._window_start
        if elapsed < (self._slow_start_window() if self._slow_start else self.interval):
            return
        # Only a client that is actually limited by its rate has learned anything about
        # the server; an idle one must not grow its allowance without bound.
        busy = self._window_starts >= 0.5 * self._pace() * elapsed
        if busy and not self._window_throttled:
            self._grow()
        self._window_start = now
        self._window_starts = 0
        self._window_throttled = False

    def _grow(self) -> None:
        if self._slow_start:
            self._set_rate(self._rate * self.slow_start_factor)
            return
        self._clean += self._window_starts
        self._clean_windows += 1
        if self._clean >= self.probe_every or self._clean_windows >= self.probe_windows:
            # Each clean step probes twice as far as the last: a right estimate is passed only
            # slowly, a cautious one (a server with less burst than assumed) is soon left.
            self._clean = self._clean_windows = 0
            self._set_rate(self._rate * (1 + self._step))
            self._step = min(self.probe_max, 2 * self._step)

    # -- 429s -----------------------------------------------------------------------------

    def on_throttle(self, sent_at: float) -> None:
        """A 429 for a request sent at *sent_at*: hold just under the rate it shows."""
        self._window_throttled = True
        if sent_at < self._last_decrease:
            return  # caused by the old rate, already cut
        fitted = self._fit(sent_at)
        if fitted is None:
            target = self._rate * (0.5 if self._slow_start else self.decrease)
        else:
            target = fitted * (1 - self.margin)
        self.estimate = fitted
        if fitted is not None:
            self._plan_boost(fitted, sent_at)
        self._slow_start = False
        self._clean, self._clean_windows, self._step = 0, 0, self.probe
        self._set_rate(target)
        # The bucket is empty now: the next estimate counts from here.
        self._anchor, self._anchor_full = sent_at, False
        self._accepted = deque(t for t in self._accepted if t > sent_at)
        self._last_decrease = self._clock()
        self.decreases += 1

    def _plan_boost(self, fitted: float, drained: float) -> None:
        """While every request waits out a ``Retry-After``, the server's bucket fills up again:
        spend half of it (as the estimate sees it) in the second after the pause."""
        refill = fitted * min(self.burst, max(0.0, self._not_before - drained))
        self._boost = self.refill_share * refill / self.burst

    def _fit(self, drained: float) -> float | None:
        """The slowest bucket that accepted what was answered before the bucket ran dry."""
        anchor = self._anchor
        if anchor is None:
            return None
        sends = sorted(t for t in self._accepted if anchor <= t < drained)
        if not sends:
            return None
        full, burst, low, high = self._anchor_full, self.burst, self.minimum, self.maximum
        slowest = slowest_rate(sends, start=anchor, full=full, burst=burst, low=low, high=high)
        # Few answers leave a wide range between the slowest bucket that accepted them and
        # the fastest one that would still have refused this request: take its middle.
        fastest = fastest_rate(sends, drained, start=anchor, full=full, burst=burst, low=low,
                               high=high)
        return (slowest + fastest) / 2 if fastest > slowest else slowest

    def _set_rate(self, rate: float) -> None:
        ceiling = self.maximum
        if self._advertised is not None:
            ceiling = min(ceiling, self._advertised * (1 - self.margin))
        self._rate = min(ceiling, max(self.minimum, rate))

    def __repr__(self) -> str:
        return f"AdaptiveLimiter(rate={self._rate:.2f}, slow_start={self._slow_start})"
