"""Retry policy: full-jitter backoff, the run-wide retry budget and test mode."""

from __future__ import annotations

import random

import pytest

from batch.api import RetryBudget, RetryPolicy


def test_budget_spends_and_refunds() -> None:
    budget = RetryBudget(capacity=20, retry_cost=5, timeout_cost=10, success_refund=1)
    assert budget.try_spend()
    assert budget.try_spend(timeout=True)
    assert budget.left == 5
    assert not budget.try_spend(timeout=True)  # cannot pay: nothing spent
    assert budget.left == 5
    assert budget.try_spend()
    assert not budget.try_spend()
    for _ in range(30):
        budget.refund()
    assert budget.left == 20  # never above capacity
    assert "left=20" in repr(budget)


def test_budget_rejects_negative_amounts() -> None:
    with pytest.raises(ValueError):
        RetryBudget(capacity=-1)


def test_full_jitter_bounds_and_cap() -> None:
    policy = RetryPolicy(wait_initial=0.5, wait_max=4.0, wait_exp_base=2.0)
    rng = random.Random(1)
    for retry, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (9, 4.0)]:
        waits = [policy.backoff(retry, rng=rng) for _ in range(200)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # jitter spans the whole range
        assert min(waits) < ceiling * 0.2


def test_retry_after_is_capped() -> None:
    policy = RetryPolicy(retry_after_max=60.0)
    assert policy.retry_after(5.0) == 5.0
    assert policy.retry_after(3600.0) == 60.0
    assert policy.retry_after(None) == 0.0
    assert policy.retry_after(-3.0) == 0.0


def test_testing_mode_switches_waits_off_only() -> None:
    policy = RetryPolicy.for_testing(attempts=4)
    assert policy.attempts == 4
    assert policy.backoff(7) == 0.0
    assert policy.retry_after(30.0) == 0.0
    assert RetryPolicy.for_testing().attempts == RetryPolicy().attempts


def test_each_policy_has_its_own_budget() -> None:
    a, b = RetryPolicy(), RetryPolicy()
    assert a.budget is not b.budget
    assert a.budget.left == 500


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(wait_initial=-1.0)
