"""The rate limiters: even spacing, the shared pause, the rate found from 429s, and the
server's rate-limit headers."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from batch.api import Client, Credentials
from batch.api.limiter import (
    AdaptiveLimiter,
    FixedRateLimiter,
    Quota,
    fastest_rate,
    read_quota,
    slowest_rate,
)
from batch.sandbox import DEFAULT_PASSWORD, DEFAULT_USER, SandboxConfig, run_sandbox
from tests.limiter_sim import TokenBucket, simulate_run


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


async def test_adaptive_slow_start_grows_gently_until_the_first_429(clock: FakeClock) -> None:
    limiter = AdaptiveLimiter(initial=10.0, clock=clock, sleep=clock.sleep)
    await busy_interval(limiter, clock, 0.5)
    limiter.on_success()
    assert limiter.rate == pytest.approx(12.5)  # slow start: x1.25 a window
    await busy_interval(limiter, clock, 0.1)
    limiter.on_success()  # still inside the quarter-second window: no growth
    assert limiter.rate == pytest.approx(12.5)
    limiter.on_throttle(clock.now)  # nothing answered yet to measure from: halve
    assert limiter.rate == pytest.approx(6.25)
    clock.now += 0.01
    await busy_interval(limiter, clock, 1.0)
    limiter.on_success()  # the window saw the 429: no growth
    assert limiter.rate == pytest.approx(6.25)


async def test_slow_start_window_is_a_few_round_trips(clock: FakeClock) -> None:
    """A far server is not asked for more before the answers at the current rate are in; a
    near one is found quickly."""
    slow = AdaptiveLimiter(initial=20.0, slow_start_factor=2.0, interval=2.0, clock=clock,
                           sleep=clock.sleep)
    slow.on_answer(clock.now - 0.1)  # 100 ms round trips: a window of five, 500 ms
    await busy_interval(slow, clock, 0.45)
    slow.on_success()
    assert slow.rate == pytest.approx(20.0)
    await busy_interval(slow, clock, 0.1)
    slow.on_success()
    assert slow.rate == pytest.approx(40.0)
    near = AdaptiveLimiter(initial=20.0, slow_start_factor=2.0, clock=clock, sleep=clock.sleep)
    near.on_answer(clock.now - 0.002)  # 2 ms round trips: a window of 10 ms
    await busy_interval(near, clock, 0.5)  # (the first window began at creation)
    near.on_success()
    await busy_interval(near, clock, 0.05)
    near.on_success()
    assert near.rate == pytest.approx(80.0)


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


def test_the_first_429_sets_the_rate_just_under_the_buckets() -> None:
    """Slow start spends the bucket's burst; the answers up to the first 429 show its rate."""
    for limit in (5.0, 20.0, 50.0):
        run = simulate_run(limit, families=100)
        assert run.estimates, limit
        assert 0.9 * limit <= run.estimates[0] <= 1.05 * limit
        assert run.final_rate <= 1.02 * limit  # probing past it, a 429 measures it again


def test_few_429s_against_a_token_bucket_without_headers() -> None:
    """200 families (two requests each) at 20 requests a second: the first 429 is almost the
    only one, and the run keeps to the server's rate."""
    run = simulate_run(20.0, families=200)
    assert run.refused <= 4  # under 1 % of about 400 requests
    assert run.accepted / run.seconds >= 0.95 * 20.0


def test_rate_limit_headers_avoid_every_429() -> None:
    run = simulate_run(20.0, families=200, headers=True)
    assert run.refused == 0
    assert run.final_rate == pytest.approx(20.0 * 0.98)
    assert run.accepted / run.seconds >= 0.95 * 20.0


def test_a_later_429_measures_the_rate_from_empty_to_empty(clock: FakeClock) -> None:
    """Between two 429s the bucket went from empty to empty: what it took in between shows
    its rate (here a second's pause refills it without overflowing)."""
    limiter = AdaptiveLimiter(initial=50.0, clock=clock, sleep=clock.sleep)
    bucket = TokenBucket(30.0, now=clock.now)
    bucket.tokens = 0.0  # it ran dry: the first 429, with nothing to measure from yet
    limiter.on_throttle(clock.now)
    sent = clock.now + 1.0  # Retry-After: 1
    while bucket.take(sent):  # then 40 a second until the bucket is dry again
        limiter.on_answer(sent)
        sent += 1 / 40
    clock.now = sent + 0.05
    limiter.on_throttle(sent)
    assert limiter.estimate is not None
    assert 0.97 * 30.0 <= limiter.estimate <= 30.0
    assert limiter.rate == pytest.approx(limiter.estimate * 0.98)


async def test_probing_after_an_estimate_doubles_at_each_clean_step(clock: FakeClock) -> None:
    limiter = AdaptiveLimiter(initial=10.0, probe_every=10, clock=clock, sleep=clock.sleep)
    limiter.on_throttle(clock.now)  # nothing to measure from: halve, and hold at 5
    clock.now += 0.01
    await busy_interval(limiter, clock, 2.0)
    limiter.on_success()  # the window of the 429
    rates = [limiter.rate]
    for _ in range(4):
        await busy_interval(limiter, clock, 2.0)  # ten requests at full pace, no 429
        limiter.on_success()
        rates.append(limiter.rate)
    steps = [b / a - 1 for a, b in itertools.pairwise(rates)]
    assert steps == pytest.approx([0.01, 0.02, 0.04, 0.08])
    limiter.on_throttle(clock.now)
    await busy_interval(limiter, clock, 2.0)
    limiter.on_success()  # the window saw the 429
    before = limiter.rate
    await busy_interval(limiter, clock, 2.0)
    limiter.on_success()
    assert limiter.rate == pytest.approx(before * 1.01)  # back to the smallest step


# -- rate-limit headers ----------------------------------------------------------------------


class Headers(dict[str, str]):
    """Headers looked up whatever the case of their names, as aiohttp's are."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__({k.lower(): v for k, v in headers.items()})

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)


def quota(**headers: str) -> Quota | None:
    """What *headers* (names with ``_`` for ``-``) say, read as aiohttp would give them."""
    return read_quota(Headers({k.replace("_", "-"): v for k, v in headers.items()}),
                      wall=lambda: 1_700_000_000.0)


def test_reads_the_ietf_fields() -> None:
    assert quota(RateLimit_Policy="20;w=1", RateLimit_Remaining="7",
                 RateLimit_Reset="1") == Quota(rate=20.0, remaining=7, reset=1.0)
    # the later structured form, and the one field holding what is left
    assert quota(RateLimit_Policy='"default";q=100;w=10',
                 RateLimit='"default";r=50;t=30') == Quota(rate=10.0, remaining=50, reset=30.0)
    # a draft put the policies in the limit; several policies: the slowest rate counts
    assert quota(ratelimit_limit="10, 10;w=1, 600;w=3600").rate == pytest.approx(600 / 3600)


def test_reads_the_x_ratelimit_fields() -> None:
    got = quota(X_RateLimit_Limit="60", X_RateLimit_Remaining="0", X_RateLimit_Reset="12")
    assert got == Quota(rate=None, remaining=0, reset=12.0)  # no window: no rate
    epoch = quota(X_RateLimit_Remaining="3", X_RateLimit_Reset="1700000030")
    assert epoch is not None and epoch.reset == pytest.approx(30.0)  # a Unix time


def test_unreadable_or_absent_headers_say_nothing() -> None:
    assert quota(Content_Type="application/json") is None
    assert quota(RateLimit_Policy="lots", RateLimit_Remaining="-3",
                 RateLimit_Reset="soon") == Quota()
    assert quota(RateLimit_Policy="10;w=0").rate is None  # type: ignore[union-attr]


def test_a_policy_sets_the_rate_at_once(clock: FakeClock) -> None:
    limiter = AdaptiveLimiter(initial=20.0, clock=clock, sleep=clock.sleep)
    limiter.on_answer(clock.now, 200, Headers({"RateLimit-Policy": "50;w=1"}))
    assert limiter.rate == pytest.approx(49.0)  # less the 2 % margin, no slow start
    limiter.on_throttle(clock.now)
    assert limiter.rate < 49.0  # a 429 still cuts


async def test_nothing_left_pauses_until_the_reset(clock: FakeClock) -> None:
    limiter = AdaptiveLimiter(initial=20.0, clock=clock, sleep=clock.sleep)
    start = clock.now
    limiter.on_answer(start, 200, Headers({"X-RateLimit-Remaining": "0",
                                               "X-RateLimit-Reset": "3"}))
    assert await limiter.acquire() >= start + 3.0


async def test_what_is_left_spreads_over_the_time_to_the_reset(clock: FakeClock) -> None:
    """Without a policy, 10 requests left for 5 s allow 2 a second until then."""
    limiter = AdaptiveLimiter(initial=20.0, clock=clock, sleep=clock.sleep)
    limiter.on_answer(clock.now, 200, Headers({"RateLimit-Remaining": "10",
                                                   "RateLimit-Reset": "5"}))
    starts = [await limiter.acquire() for _ in range(3)]
    assert starts[2] - starts[0] == pytest.approx(1.0)
    clock.now += 5.0
    later = [await limiter.acquire() for _ in range(3)]
    assert later[2] - later[0] == pytest.approx(0.1)  # the reset passed: 20 a second


def test_fixed_rate_ignores_headers() -> None:
    limiter = FixedRateLimiter(5.0)
    limiter.on_answer(0.0, 200, Headers({"RateLimit-Policy": "100;w=1"}))
    limiter.on_answer(0.0, 429, Headers({"RateLimit-Policy": "1;w=1"}))
    assert limiter.rate == 5.0


async def test_the_client_follows_the_sandboxs_headers() -> None:
    """Over real HTTP: the login's answer carries the policy, and the rate follows it."""
    config = SandboxConfig(rate_limit=40, rate_limit_headers=True)
    async with run_sandbox(config) as sb:
        credentials = Credentials(username=DEFAULT_USER, password=DEFAULT_PASSWORD)
        async with Client(sb.url, credentials=credentials) as client:
            await client.login()
            assert client.limiter.rate == pytest.approx(40 * 0.98)
            await client.find_samples("NOBODY")
            assert client.stats.rate_limited == 0


def test_the_answers_bound_the_buckets_rate_from_both_sides() -> None:
    """Sending at 40 a second into a full 20-a-second bucket: the slowest bucket that accepted
    everything and the fastest that would still refuse the 429'd request enclose 20."""
    bucket, sent, accepted = TokenBucket(20.0), 0.0, []
    while bucket.take(sent):
        accepted.append(sent)
        sent += 1 / 40
    low = slowest_rate(accepted, start=0.0, full=True)
    high = fastest_rate(accepted, sent, start=0.0, full=True)
    assert low <= 20.0 <= high <= 1.1 * low
    assert slowest_rate([], start=0.0, full=True) == pytest.approx(0.1)  # nothing to go on
