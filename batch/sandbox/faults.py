"""Fault injection: outages, latency, rate limits and random server errors, tunable at run time."""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from batch.sandbox.config import DEFAULT_TOKEN_TTL, SandboxConfig
from batch.sandbox.responses import message

ERROR_STATUSES = (500, 502, 503)
_PLAIN_ERRORS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
TUNABLE = ("error_rate", "latency_ms", "rate_limit", "drop_after_commit", "token_ttl")


class TokenBucket:
    """A token bucket refilled at *rate* tokens per second, holding at most ``max(1, rate)``."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> float:
        """Take a token: 0.0 when one was free, else seconds until one will be."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def headers(self) -> dict[str, str]:
        """The bucket as rate-limit headers (IETF and ``X-``): its size per the window it
        refills in, whole tokens left, whole seconds until it is full again."""
        now = time.monotonic()
        tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        limit, left = f"{self.capacity:g}", str(math.floor(tokens))
        reset = str(math.ceil((self.capacity - tokens) / self.rate))
        return {"RateLimit-Policy": f"{limit};w={self.capacity / self.rate:g}",
                "RateLimit-Limit": limit, "RateLimit-Remaining": left, "RateLimit-Reset": reset,
                "X-RateLimit-Limit": limit, "X-RateLimit-Remaining": left,
                "X-RateLimit-Reset": reset}


@dataclass(slots=True, kw_only=True)
class Faults:
    """The fault settings in force; ``POST /_sandbox/faults`` changes them while serving."""

    error_rate: float = 0.0
    latency_ms: float = 0.0
    rate_limit: float | None = None
    drop_after_commit: float = 0.0
    token_ttl: float = DEFAULT_TOKEN_TTL
    outage_until: float = 0.0
    bucket: TokenBucket | None = None
    rate_limit_headers: bool = False

    def stamp(self, answer: web.StreamResponse) -> None:
        """Add the bucket's rate-limit headers to an ``/api`` answer, when asked to."""
        if self.rate_limit_headers and self.bucket is not None and not answer.prepared:
            answer.headers.update(self.bucket.headers())

    @classmethod
    def from_config(cls, config: SandboxConfig) -> Faults:
        """The initial settings."""
        faults = cls(error_rate=config.error_rate, latency_ms=config.latency_ms,
                     drop_after_commit=config.drop_after_commit, token_ttl=config.token_ttl,
                     rate_limit_headers=config.rate_limit_headers)
        faults.set_rate_limit(config.rate_limit)
        return faults

    def set_rate_limit(self, rate: float | None) -> None:
        """Replace the bucket (a full one) or remove it."""
        if rate is not None and rate <= 0:
            raise ValueError("rate_limit must be positive")
        self.rate_limit = rate
        self.bucket = TokenBucket(rate) if rate is not None else None

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a ``/_sandbox/faults`` body; raise ValueError on unknown keys or bad values."""
        unknown = set(changes) - {*TUNABLE, "outage_seconds"}
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        for key, value in changes.items():
            ok = value is None and key == "rate_limit"
            ok = ok or (isinstance(value, int | float) and not isinstance(value, bool))
            if not ok or (value is not None and value < 0):
                raise ValueError(f"{key} must be a non-negative number")
        for key in ("error_rate", "drop_after_commit"):
            if key in changes and changes[key] > 1:
                raise ValueError(f"{key} must be a probability between 0 and 1")
        if "rate_limit" in changes:
            self.set_rate_limit(changes["rate_limit"])
        for key in ("error_rate", "latency_ms", "drop_after_commit", "token_ttl"):
            if key in changes:
                setattr(self, key, float(changes[key]))
        if "outage_seconds" in changes:
            self.outage_until = time.monotonic() + float(changes["outage_seconds"])

    def as_json(self) -> dict[str, Any]:
        """The current settings (``outage_seconds``: what is left of an outage)."""
        return {
            "error_rate": self.error_rate,
            "latency_ms": self.latency_ms,
            "rate_limit": self.rate_limit,
            "drop_after_commit": self.drop_after_commit,
            "token_ttl": self.token_ttl,
            "outage_seconds": max(0.0, self.outage_until - time.monotonic()),
        }


def server_error(rng: random.Random) -> web.Response:
    """A random 500/502/503, with a plain-text or a ``{"message"}`` body."""
    status = rng.choice(ERROR_STATUSES)
    if rng.random() < 0.5:
        return web.Response(text=_PLAIN_ERRORS[status], status=status, content_type="text/plain")
    return message(status, _PLAIN_ERRORS[status])


async def inject(faults: Faults, rng: random.Random, *, login: bool) -> web.Response | None:
    """The fault answer for one ``/api`` request, or None to let it through."""
    if faults.outage_until and time.monotonic() < faults.outage_until:
        return message(503, "Service Unavailable")
    if faults.latency_ms > 0:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.bucket is not None:
        wait = faults.bucket.take()
        if wait > 0:
            answer = message(429, "Too many requests")
            answer.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return answer
    if not login and faults.error_rate > 0 and rng.random() < faults.error_rate:
        return server_error(rng)
    return None
