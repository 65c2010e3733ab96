"""The server's token bucket as its answers show it: the slowest bucket that accepted them all.

A server that limits with a token bucket answers 429 only once the bucket is empty, so the
first 429 comes late: after the burst the bucket held at the start. The send times of the
requests it accepted up to then bound its rate from below: a bucket refilled more slowly
could not have let them all through. :func:`slowest_rate` finds that bound, assuming the
bucket holds ``burst`` seconds of its rate (one second: the sandbox, and a common setting).

Between two 429s the bucket goes from empty to empty, so what it accepted in between shows its
rate whatever its size, as long as it never filled up (a client sending at or above the rate
never lets it); a bucket that did fill up, or holds more than assumed, only makes the bound
lower: the client then sends a little slower than it could, and never faster.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["fastest_rate", "slowest_rate"]

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
