"""Retry waits stay in bounds and are spread evenly; the budget keeps retries a small share of traffic."""

from __future__ import annotations

import random
import statistics
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stressor.limits import Backoff, RetryBudget


def backoff(base: float = 0.1, cap: float = 30.0, seed: int = 1) -> Backoff:
    return Backoff(base, cap, rng=random.Random(seed))


def test_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    b = backoff(base=0.1, cap=30.0)
    assert [b.ceiling(a) for a in range(4)] == pytest.approx([0.1, 0.2, 0.4, 0.8])
    assert b.ceiling(8) == pytest.approx(25.6)
    assert b.ceiling(9) == 30.0
    assert b.ceiling(50) == 30.0


@pytest.mark.parametrize("attempt", [1023, 1024, 1025, 10_000, 10**9])
def test_large_attempts_do_not_overflow(attempt: int) -> None:
    b = backoff()
    assert b.ceiling(attempt) == 30.0
    assert 0.0 <= b.delay(attempt) <= 30.0


def test_tiny_base_still_grows_exactly_until_the_cap() -> None:
    b = backoff(base=1e-300, cap=1.0)
    assert b.ceiling(900) == pytest.approx(1e-300 * 2.0**900)
    assert b.ceiling(997) == 1.0


@given(
    attempt=st.integers(min_value=0, max_value=5000),
    base=st.floats(min_value=1e-6, max_value=10.0),
    cap=st.floats(min_value=1e-3, max_value=3600.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_is_always_between_zero_and_the_ceiling(attempt: int, base: float, cap: float, seed: int) -> None:
    b = Backoff(base, cap, rng=random.Random(seed))
    # Exact arithmetic as the oracle: 2**attempt as a float would overflow exactly where the code must not.
    ceiling = min(Fraction(cap), Fraction(base) * 2**attempt)
    assert b.ceiling(attempt) == pytest.approx(float(ceiling))
    assert 0.0 <= b.delay(attempt) <= b.ceiling(attempt)


def test_full_jitter_is_uniform_over_zero_to_ceiling() -> None:
    b = backoff(base=0.1, cap=30.0, seed=7)
    draws = [b.delay(3) for _ in range(20_000)]  # ceiling 0.8
    assert statistics.fmean(draws) == pytest.approx(0.4, abs=0.01)
    deciles = [0] * 10
    for d in draws:
        deciles[min(9, int(d / 0.08))] += 1
    # Every tenth of the range gets about a tenth of the draws: no clustering at the ceiling, as plain
    # exponential backoff would, and no clustering near zero.
    assert all(1800 <= count <= 2200 for count in deciles), deciles


def test_same_seed_same_waits() -> None:
    assert [backoff(seed=3).delay(a) for a in range(10)] == [backoff(seed=3).delay(a) for a in range(10)]
    first, second = backoff(seed=3), backoff(seed=4)
    assert [first.delay(5) for _ in range(5)] != [second.delay(5) for _ in range(5)]


def test_bad_backoff_arguments() -> None:
    with pytest.raises(ValueError, match="base"):
        Backoff(0.0, 1.0, rng=random.Random(0))
    with pytest.raises(ValueError, match="cap"):
        Backoff(0.1, -1.0, rng=random.Random(0))
    with pytest.raises(ValueError, match="attempt"):
        backoff().delay(-1)


# --- retry budget -------------------------------------------------------------------------------------------


def test_budget_allows_ten_percent_and_refuses_the_eleventh() -> None:
    budget = RetryBudget(ratio=0.1, min_per_s=0.0)
    for _ in range(100):
        budget.record_request(now=1.0)
    allowed = [budget.try_retry(now=1.5) for _ in range(11)]
    assert allowed == [True] * 10 + [False]
    assert budget.counts(1.5) == (100, 10)


@pytest.mark.parametrize("ratio", [0.29, 0.7, 0.1, 0.3, 0.57])
def test_budget_ratio_is_exact_despite_float_error(ratio: float) -> None:
    budget = RetryBudget(ratio=ratio, min_per_s=0.0)
    for _ in range(100):
        budget.record_request(0.0)
    granted = 0
    while budget.try_retry(0.0):
        granted += 1
    assert granted == round(ratio * 100)


def test_floor_lets_the_first_failures_retry() -> None:
    budget = RetryBudget(ratio=0.1, min_per_s=0.5, window_s=10.0)
    budget.record_request(0.0)
    # 0.5/s over a 10 s window: five retries even though one request would allow 0.1 of one.
    assert [budget.try_retry(0.0) for _ in range(6)] == [True] * 5 + [False]


def test_can_retry_does_not_spend() -> None:
    budget = RetryBudget(ratio=0.0, min_per_s=0.1, window_s=10.0)
    assert budget.can_retry(0.0)
    assert budget.can_retry(0.0)
    budget.record_retry(0.0)
    assert not budget.can_retry(0.0)


def test_budget_window_slides() -> None:
    budget = RetryBudget(ratio=0.1, min_per_s=0.0, window_s=10.0)
    for _ in range(50):
        budget.record_request(0.2)
    assert sum(budget.try_retry(0.5) for _ in range(10)) == 5
    # Ten seconds later both the requests and the retries have left the window.
    assert budget.counts(10.5) == (0, 0)
    assert not budget.can_retry(10.5)
    for _ in range(20):
        budget.record_request(10.5)
    assert sum(budget.try_retry(10.6) for _ in range(10)) == 2


@given(
    events=st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=0.5), st.booleans()),
        min_size=1,
        max_size=300,
    ),
    ratio=st.sampled_from([0.05, 0.1, 0.2, 0.5]),
)
def test_retries_never_exceed_the_budget_over_the_window(events: list[tuple[float, bool]], ratio: float) -> None:
    budget = RetryBudget(ratio=ratio, min_per_s=0.2, window_s=10.0)
    now = 0.0
    for gap, is_retry in events:
        now += gap
        if is_retry:
            budget.try_retry(now)
        else:
            budget.record_request(now)
        requests, retries = budget.counts(now)
        assert retries <= ratio * requests + 0.2 * 10.0 + 1e-9
