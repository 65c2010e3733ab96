"""The rate limiters: even spacing, the shared pause, and AIMD on 429s."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from batch.api.limiter import AdaptiveLimiter, FixedRateLimiter


class FakeClock:
    """Virtual time: the test moves it by hand, and the limiter's sleeps advance it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += max(delay, 0.0)


@pytest.fixture
def clock() -> FakeClock:
    """A fresh virtual clock."""
    return FakeClock()


async def busy_interval(limiter: AdaptiveLimiter, clock: FakeClock, seconds: float) -> None:
    """Use the whole allowance for *seconds*: acquire back to back in virtual time."""
    end = clock.now + seconds
    while clock.now + 1.0 / limiter.rate <= end:
        await limiter.acquire()
    clock.now = end


async def test_fixed_rate_spaces_starts_evenly() -> None:
    limiter = FixedRateLimiter(50.0)
    starts = [await limiter.acquire() for _ in range(11)]
    # Ten intervals of 20 ms; sleeps may wake late but never early by more than a tick.
    assert starts[-1] - starts[0] >= 10 * 0.02 * 0.95
    assert limiter.rate == 50.0


async def test_fixed_rate_concurrent_waiters_do_not_burst() -> None:
    limiter = FixedRateLimiter(100.0)
    start = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for _ in range(21)))
    assert time.monotonic() - start >= 20 * 0.01 * 0.95


async def test_pause_holds_every_waiter() -> None:
    limiter = FixedRateLimiter(1000.0)
    limiter.pause_until(time.monotonic() + 0.2)
    start = time.monotonic()
    await asyncio.gather(*(limiter.acquire() for _ in range(5)))
    assert time.monotonic() - start >= 0.19


async def test_pause_set_while_waiting_applies() -> None:
    limiter = FixedRateLimiter(5.0)
    await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())  # due in 0.2 s
    await asyncio.sleep(0.01)
    limiter.pause_until(time.monotonic() + 0.4)
    start = time.monotonic()
    await waiter
    assert time.monotonic() - start >= 0.38


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        FixedRateLimiter(0)
    with pytest.raises(ValueError):
        AdaptiveLimiter(decrease=1.0)
    with pytest.raises(ValueError):
        AdaptiveLimiter(initial=0.1, minimum=1.0)


async def test_adaptive_slow_start_then_halving_then_aimd(clock: FakeClock) -> None:
    limiter = AdaptiveLimiter(initial=10.0, interval=0.5, slow_start_factor=1.5, clock=clock,
                              sleep=clock.sleep)
    await busy_interval(limiter, clock, 0.5)
    limiter.on_success()
    assert limiter.rate == pytest.approx(15.0)  # slow start: x1.5
    await busy_interval(limiter, clock, 0.5)
    limiter.on_success()
    assert limiter.rate == pytest.approx(22.5)
    limiter.on_throttle(clock.now)
    assert limiter.rate == pytest.approx(11.25)  # leaving slow start halves
    clock.now += 0.01
    await busy_interval(limiter, clock, 0.5)
    limiter.on_success()  # the interval saw a 429: no growth yet
    assert limiter.rate == pytest.approx(11.25)
    await busy_interval(limiter, clock, 0.5)
    limiter.on_success()
    assert limiter.rate == pytest.approx(12.25)  # additive increase
    limiter.on_throttle(clock.now)
    assert limiter.rate == pytest.approx(12.25 * 0.85)


async def test_slow_start_grows_every_two_round_trips(clock: FakeClock) -> None:
    """A fast server is found quickly; a slow one waits for the answers at the current rate."""
    fast = AdaptiveLimiter(initial=20.0, interval=0.5, min_window=0.05, clock=clock,
                           sleep=clock.sleep)
    sent = await fast.acquire()
    clock.now += 0.001
    fast.on_answer(sent)  # 1 ms round trips: the window shrinks to min_window (50 ms)
    await busy_interval(fast, clock, 0.05)
    fast.on_success()
    assert fast.rate == pytest.approx(40.0)
    await busy_interval(fast, clock, 0.04)
    fast.on_success()  # still inside the 50 ms window: no growth
    assert fast.rate == pytest.approx(40.0)

    slow = AdaptiveLimiter(initial=20.0, interval=0.5, clock=clock, sleep=clock.sleep)
    slow.on_answer(clock.now - 0.15)  # 150 ms round trips: two exceed the half-interval cap
    await busy_interval(slow, clock, 0.2)
    slow.on_success()
    assert slow.rate == pytest.approx(20.0)
    await busy_interval(slow, clock, 0.05)
    slow.on_success()
    assert slow.rate == pytest.approx(40.0)


async def test_one_burst_of_429s_decreases_once(clock: FakeClock) -> None:
    limiter = AdaptiveLimiter(initial=40.0, clock=clock, sleep=clock.sleep)
    sent = clock.now
    clock.now += 0.1
    for _ in range(10):  # ten requests sent before the reaction, all throttled
        limiter.on_throttle(sent)
    assert limiter.rate == pytest.approx(20.0)
    assert limiter.decreases == 1
    clock.now += 0.1
    limiter.on_throttle(clock.now)  # sent after the decrease: a new signal
    assert limiter.decreases == 2


def test_idle_client_does_not_grow(clock: FakeClock) -> None:
    limiter = AdaptiveLimiter(initial=10.0, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        clock.now += 1.0
        limiter.on_success()  # one request a second: far below the allowance
    assert limiter.rate == 10.0


async def test_rate_stays_within_bounds(clock: FakeClock) -> None:
    limiter = AdaptiveLimiter(initial=2.0, minimum=1.0, maximum=3.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        await busy_interval(limiter, clock, 2.0)
        limiter.on_success()
    assert limiter.rate == 3.0
    for _ in range(10):
        clock.now += 1.0
        limiter.on_throttle(clock.now)
    assert limiter.rate == 1.0


async def test_adaptive_probes_gently_near_the_last_ceiling(clock: FakeClock) -> None:
    """Within 5% of where the server pushed back, growth slows to increase * probe."""
    limiter = AdaptiveLimiter(initial=20.0, interval=0.5, slow_start_factor=1.5, clock=clock,
                              sleep=clock.sleep)
    await busy_interval(limiter, clock, 0.5)
    limiter.on_success()  # slow start: 30
    limiter.on_throttle(clock.now)  # ceiling 30, rate 15
    clock.now += 0.01
    await busy_interval(limiter, clock, 0.5)
    limiter.on_success()  # the interval saw the 429
    rates = []
    for _ in range(16):
        await busy_interval(limiter, clock, 0.5)
        limiter.on_success()
        rates.append(limiter.rate)
    assert rates[0] == pytest.approx(16.0)  # additive far below the ceiling
    steps = [b - a for a, b in itertools.pairwise(rates)]
    assert steps[0] == pytest.approx(1.0)
    near = [b - a for a, b in itertools.pairwise(rates) if a >= 0.95 * 30]
    assert near and all(s == pytest.approx(0.25) for s in near)


async def test_adaptive_cuts_from_the_rate_really_sent(clock: FakeClock) -> None:
    """After slow start a 429 cuts from the measured sending rate when it is lower."""
    limiter = AdaptiveLimiter(initial=10.0, interval=0.5, window=2.0, clock=clock,
                              sleep=clock.sleep)
    limiter.on_throttle(clock.now)  # leave slow start: 5 req/s
    clock.now += 0.01
    limiter._set_rate(40.0)  # an allowance far above what is sent
    for _ in range(30):  # 10 req/s really sent for 3 s
        await limiter.acquire()
        clock.now += 0.1
    limiter.on_throttle(clock.now)
    assert limiter.rate == pytest.approx(10.0 * 0.85, rel=0.05)
