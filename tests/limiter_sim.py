"""A run of the adaptive limiter against a token bucket, in virtual time (deterministic).

The event loop's clock is virtual: a sleep moves it on at once, so a run of minutes takes a
fraction of a second and gives the same result every time. The server is the sandbox's bucket
(``max(1, rate)`` tokens, 429 with ``Retry-After`` >= 1 s, optionally rate-limit headers), 50 ms
away; the client sends, per family, two requests one after the other, 32 families at a time.
"""

from __future__ import annotations

import asyncio
import random
import selectors
from dataclasses import dataclass, field
from typing import Any

from batch.api.limiter import AdaptiveLimiter


class TokenBucket:
    """The sandbox's bucket on a given clock."""

    def __init__(self, rate: float, *, capacity: float | None = None, now: float = 0.0) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate) if capacity is None else capacity
        self.tokens, self.stamp = self.capacity, now

    def take(self, now: float) -> bool:
        """Take a token at *now*; False when there is none."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def headers(self) -> dict[str, str]:
        """A policy of the bucket's size per the window it refills in."""
        return {"RateLimit-Policy": f"{self.capacity:g};w={self.capacity / self.rate:g}"}


class _Selector(selectors.DefaultSelector):
    """Moves the loop's virtual clock to the next timer instead of waiting for it."""

    def __init__(self, loop: list[VirtualLoop]) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None:
            raise RuntimeError("nothing left to run")
        self._loop[0].virtual += max(timeout, 0.0)
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock only moves when everything waits."""

    def __init__(self) -> None:
        box: list[VirtualLoop] = []
        super().__init__(_Selector(box))
        box.append(self)
        self.virtual = 0.0

    def time(self) -> float:
        return self.virtual


@dataclass
class Run:
    """What one simulated run did."""

    accepted: int = 0
    refused: int = 0
    first: float | None = None
    last: float = 0.0
    estimates: list[float] = field(default_factory=list)
    final_rate: float = 0.0

    @property
    def seconds(self) -> float:
        """From the first request sent to the last answer."""
        return self.last - (self.first or 0.0)


async def _run(limit: float, families: int, headers: bool, latency: float) -> Run:
    loop = asyncio.get_running_loop()
    rng = random.Random(1)
    limiter = AdaptiveLimiter(clock=loop.time, sleep=asyncio.sleep)
    bucket = TokenBucket(limit)
    run = Run()

    async def request() -> None:
        while True:
            sent = await limiter.acquire()
            run.first = sent if run.first is None else run.first
            await asyncio.sleep(latency + rng.random() * 0.002)
            ok = bucket.take(loop.time())
            await asyncio.sleep(0.001)
            limiter.on_answer(sent, 200 if ok else 429, bucket.headers() if headers else None)
            run.last = loop.time()
            if ok:
                run.accepted += 1
                limiter.on_success()
                return
            run.refused += 1
            limiter.pause_until(loop.time() + 1.0)  # Retry-After: 1
            limiter.on_throttle(sent)
            if limiter.estimate is not None and limiter.estimate not in run.estimates:
                run.estimates.append(limiter.estimate)

    left = list(range(families))

    async def worker() -> None:
        while left:
            left.pop()
            await request()  # the look-up
            await request()  # the create

    await request()  # the login
    await asyncio.gather(*(worker() for _ in range(32)))
    run.final_rate = limiter.rate
    return run


def simulate_run(limit: float, *, families: int, headers: bool = False,
                 latency: float = 0.05) -> Run:
    """Run *families* new families against a *limit* requests/s bucket, in virtual time."""
    loop = VirtualLoop()
    try:
        return loop.run_until_complete(_run(limit, families, headers, latency))
    finally:
        loop.close()
