"""What a server's rate-limit headers say: its rate, what is left, and when it comes back.

Emedgene documents no rate-limit headers (inferred: ``provenance``), so every common form is
read and none is required: the IETF fields (``RateLimit-Policy: 10;w=1`` and its later
structured form ``"default";q=10;w=1``; ``RateLimit-Limit``/``-Remaining``/``-Reset``, or
``RateLimit: "default";r=5;t=1``) and the older ``X-RateLimit-Limit``/``-Remaining``/``-Reset``
(the reset in seconds, or a Unix time as some servers send it). Without any of them the
limiter finds the rate by probing (``limiter``).

A policy (a quota ``q`` per window ``w`` seconds) gives the rate, ``q / w``; a limit with no
window gives none (a minute's limit read as a second's would be 60 times too fast). What is
left and when it comes back bound the next few requests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["HEADERS", "Quota", "read_quota"]

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
