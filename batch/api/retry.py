"""Retry policy: how many attempts, how long to wait between them, and a run-wide retry budget.

Backoff is capped exponential with *full jitter* (sleep = uniform(0, min(cap, base * 2**n))),
which spreads retries of many workers better than plain or equal jitter. The budget is the
AWS "retry quota": a client-wide bucket of tokens that retries spend and successes refill, so
a widespread outage stops retries quickly instead of multiplying traffic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["RetryBudget", "RetryPolicy"]


class RetryBudget:
    """A run-wide bucket of retry tokens (AWS retry quota).

    A retry costs ``retry_cost`` tokens (``timeout_cost`` after a timeout, which is the most
    expensive failure for a server); each success refunds ``success_refund`` up to the
    capacity. When a retry cannot be paid for, the caller gives up at once.
    """

    __slots__ = ("_left", "capacity", "retry_cost", "success_refund", "timeout_cost")

    def __init__(
        self,
        *,
        capacity: int = 500,
        retry_cost: int = 5,
        timeout_cost: int = 10,
        success_refund: int = 1,
    ) -> None:
        if capacity < 0 or retry_cost < 0 or timeout_cost < 0 or success_refund < 0:
            raise ValueError("retry budget amounts must not be negative")
        self.capacity = capacity
        self.retry_cost = retry_cost
        self.timeout_cost = timeout_cost
        self.success_refund = success_refund
        self._left = capacity

    @property
    def left(self) -> int:
        """Tokens left in the bucket."""
        return self._left

    def try_spend(self, *, timeout: bool = False) -> bool:
        """Pay for one retry; False (and nothing spent) when the bucket cannot pay."""
        cost = self.timeout_cost if timeout else self.retry_cost
        if cost > self._left:
            return False
        self._left -= cost
        return True

    def refund(self) -> None:
        """Credit one success."""
        self._left = min(self.capacity, self._left + self.success_refund)

    def __repr__(self) -> str:
        return f"RetryBudget(left={self._left}, capacity={self.capacity})"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How transient failures are retried.

    ``attempts`` counts every try, the first one included. ``retry_after_max`` caps how long a
    server's ``Retry-After`` may hold the client. ``outage_max`` bounds how long one request
    waits out a server that answered before and is now down (see ``batch.api.outage``).
    ``testing`` switches every wait off (backoff, ``Retry-After`` and outage pauses) while
    keeping the same attempt counts, so tests run fast and still exercise the retry paths.
    """

    attempts: int = 6
    wait_initial: float = 0.2
    wait_max: float = 30.0
    wait_exp_base: float = 2.0
    retry_after_max: float = 120.0
    outage_max: float = 300.0
    budget: RetryBudget = field(default_factory=RetryBudget)
    testing: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.wait_initial < 0 or self.wait_max < 0 or self.retry_after_max < 0:
            raise ValueError("waits must not be negative")

    @classmethod
    def for_testing(cls, *, attempts: int = 6, budget: RetryBudget | None = None) -> RetryPolicy:
        """A policy with the same attempt counts and no waiting at all."""
        return cls(
            attempts=attempts,
            wait_initial=0.0,
            wait_max=0.0,
            retry_after_max=0.0,
            budget=budget if budget is not None else RetryBudget(),
            testing=True,
        )

    def backoff(self, retry: int, *, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number *retry* (0 for the first retry); full jitter."""
        if self.testing:
            return 0.0
        ceiling = min(self.wait_max, self.wait_initial * self.wait_exp_base ** max(retry, 0))
        return (rng or random).uniform(0.0, ceiling)

    def retry_after(self, seconds: float | None) -> float:
        """The pause to honour for a server's ``Retry-After`` of *seconds*, capped."""
        if self.testing or seconds is None:
            return 0.0
        return min(max(seconds, 0.0), self.retry_after_max)
