"""The bucketed sliding window agrees with counting every event by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stressor.limits import SlidingCounts


def test_counts_leave_the_window_after_it_passes() -> None:
    counts = SlidingCounts(window_s=3.0, bucket_s=1.0, fields=1)
    counts.add(0.5, 0)
    counts.add(1.5, 0, amount=2)
    assert counts.totals(2.9) == (3,)
    assert counts.totals(3.0) == (2,)  # the bucket [0, 1) has left
    assert counts.totals(4.0) == (0,)
    assert counts.totals(1000.0) == (0,)


def test_a_slightly_late_event_lands_in_its_own_bucket_or_is_dropped() -> None:
    counts = SlidingCounts(window_s=3.0, bucket_s=1.0, fields=1)
    counts.add(5.0, 0)
    counts.add(3.5, 0)  # still inside the window ending at 5
    counts.add(2.5, 0)  # already outside
    assert counts.totals(5.0) == (2,)
    assert counts.totals(6.0) == (1,)


def test_bad_window_arguments() -> None:
    with pytest.raises(ValueError, match="bucket_s"):
        SlidingCounts(10.0, bucket_s=0.0)
    with pytest.raises(ValueError, match="window_s"):
        SlidingCounts(0.5, bucket_s=1.0)
    with pytest.raises(ValueError, match="fields"):
        SlidingCounts(10.0, fields=0)


@given(
    window=st.integers(min_value=1, max_value=20),
    events=st.lists(
        st.tuples(st.floats(min_value=-1.5, max_value=4.0), st.integers(0, 1), st.integers(1, 3)),
        max_size=200,
    ),
)
def test_matches_a_brute_force_count(window: int, events: list[tuple[float, int, int]]) -> None:
    counts = SlidingCounts(window_s=float(window), bucket_s=1.0, fields=2)
    seen: list[tuple[float, int, int]] = []
    newest = 0.0
    now = 100.0
    for step, field, amount in events:
        # Time moves forward in general but some callers report a moment slightly in the past.
        now = max(0.0, now + step)
        newest = max(newest, now)
        counts.add(now, field, amount)
        head = math.floor(newest)
        if math.floor(now) > head - window:
            seen.append((now, field, amount))
        expected = [0, 0]
        for t, f, a in seen:
            if math.floor(t) > head - window:
                expected[f] += a
        assert counts.totals(newest) == tuple(expected)
