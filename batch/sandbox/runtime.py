"""What one running sandbox holds besides its state: request statistics and the record file,
the faults in force, and where the application keeps them.

Request statistics and the request record file (never headers, never passwords).

Fault injection: outages, latency, rate limits and random server errors, tunable at run time.

What one running sandbox app holds: its state, fault settings, counters and side channels.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from batch.sandbox.config import DEFAULT_TOKEN_TTL, SandboxConfig
from batch.sandbox.responses import message
from batch.sandbox.state import Case, SandboxState, User
from batch.sandbox.webhook import Notifier

UNMATCHED = "<unmatched>"


def route_key(request: web.Request) -> str:
    """``"<METHOD> <route pattern>"``, without a trailing slash so both forms count as one."""
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return f"{request.method} {UNMATCHED}"
    pattern = resource.canonical
    if len(pattern) > 1 and pattern.endswith("/"):
        pattern = pattern[:-1]
    return f"{request.method} {pattern}"


class Stats:
    """Counts answers per route and status code."""

    def __init__(self) -> None:
        self.counts: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, key: str, status: str) -> None:
        """Count one answer (*status* is the code as text, or ``"dropped"``)."""
        self.counts[key][status] += 1

    def as_json(self) -> dict[str, Any]:
        """``{"requests": {"<METHOD> <pattern>": {"<status>": count}}}``."""
        return {"requests": {k: dict(v) for k, v in self.counts.items()}}


def _redact(body: Any) -> Any:
    if isinstance(body, dict) and "password" in body:
        return {**body, "password": "<redacted>"}
    return body


class Recorder:
    """Appends one JSON line per request, each written as it happens (``tail -f`` shows it,
    a killed sandbox loses none). The file holds request bodies (patient data): mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def open(self) -> None:
        """Open the file for appending, line-buffered, created 0600 whatever the umask."""
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        self._file = os.fdopen(fd, "a", encoding="utf-8", buffering=1)

    def write(self, request: web.Request, body: Any) -> None:
        """Record method, path, query pairs and the JSON body (passwords redacted)."""
        if self._file is None:
            return
        line = {"method": request.method, "path": request.path,
                "query": [[k, v] for k, v in request.query.items()], "body": _redact(body)}
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")

    def flush(self) -> None:
        """Push buffered lines to the file."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close."""
        if self._file is not None:
            self._file.close()
            self._file = None


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


class Runtime:
    """Per-app companions of a :class:`SandboxState` (the state may outlive the app)."""

    def __init__(self, config: SandboxConfig, state: SandboxState) -> None:
        self.config = config
        self.state = state
        self.rng = random.Random(config.seed)
        self.faults = Faults.from_config(config)
        self.stats = Stats()
        self.recorder = Recorder(config.record) if config.record is not None else None
        self.notifier = Notifier(config.webhook) if config.webhook else None

    def tick(self) -> None:
        """Apply due lifecycle steps and announce them."""
        changes = self.state.advance_due(self.config.advance_after)
        if changes and self.notifier is not None:
            self.notifier.send(changes)

    def case(self, name: str) -> Case | None:
        """A case by name, with its lifecycle brought up to date."""
        self.tick()
        return self.state.cases.get(name)


RUNTIME = web.AppKey("sandbox_runtime", Runtime)
#: The authenticated user of an ``/api`` request.
USER = web.RequestKey("sandbox_user", User)
#: Set on a request whose connection must be closed instead of answered.
DROP = web.RequestKey("sandbox_drop", bool)


def runtime(request: web.Request) -> Runtime:
    """The runtime of the app serving *request*."""
    return request.app[RUNTIME]
