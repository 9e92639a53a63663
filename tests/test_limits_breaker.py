"""The breaker stops a run that mostly fails, needs enough evidence and a sustained failure, forgets old bursts,
never un-trips. Tests of the ratio itself set ``sustain_s=0`` so that they judge at once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stressor.limits import Breaker, BreakerTrip


def test_needs_min_requests_before_judging() -> None:
    breaker = Breaker(window_s=30.0, failure_ratio=0.5, min_requests=20, sustain_s=0.0)
    for i in range(19):
        assert breaker.record(i * 0.1, ok=False) is None
    trip = breaker.record(2.0, ok=False)
    assert trip == BreakerTrip(failures=20, total=20, window_s=30.0, ratio=1.0, at=2.0)


def test_trips_above_the_ratio_not_at_it() -> None:
    breaker = Breaker(min_requests=20, sustain_s=0.0)
    for _ in range(10):
        breaker.record(1.0, ok=True)
    for _ in range(10):
        breaker.record(1.0, ok=False)
    assert breaker.tripped(1.0) is None  # exactly 50 %: not more than half
    trip = breaker.record(1.0, ok=False)
    assert trip is not None
    assert (trip.failures, trip.total) == (11, 21)


def test_describe_reads_as_one_sentence_for_the_summary() -> None:
    trip = BreakerTrip(failures=34, total=52, window_s=30.0, ratio=34 / 52, at=5.0)
    assert trip.describe() == "stopped submitting: 34 of 52 requests failed (65 %) over the last 30 s"


def test_describe_of_a_real_trip() -> None:
    breaker = Breaker(window_s=10.0, min_requests=4, sustain_s=0.0)
    for ok in (True, False, False, False):
        trip = breaker.record(1.0, ok)
    assert trip is not None
    assert trip.describe() == "stopped submitting: 3 of 4 requests failed (75 %) over the last 10 s"


def test_trips_at_the_moment_the_ratio_is_crossed() -> None:
    breaker = Breaker(min_requests=20, sustain_s=0.0)
    outcomes = [True] * 10 + [False] * 40
    trip = None
    for i, ok in enumerate(outcomes):
        trip = trip or breaker.record(float(i) * 0.1, ok)
    assert trip is not None
    assert (trip.failures, trip.total) == (11, 21)


def test_an_old_burst_that_left_the_window_does_not_trip() -> None:
    breaker = Breaker(window_s=30.0, min_requests=20)
    for i in range(15):
        breaker.record(i * 0.05, ok=False)  # a burst, too small to judge on its own
    # 30 s later: 8 failures in 20 (40 %). Counting the old burst would make it 23 of 35 (66 %).
    for i in range(20):
        assert breaker.record(31.0 + i * 0.1, ok=i >= 8) is None
    assert breaker.tripped(33.0) is None


def test_old_failures_alone_do_not_trip_later() -> None:
    breaker = Breaker(window_s=30.0, min_requests=20)
    for i in range(19):
        breaker.record(i * 0.05, ok=False)
    for i in range(30):
        breaker.record(40.0 + i * 0.1, ok=True)
    assert breaker.tripped(43.0) is None


def test_ratio_can_rise_as_old_successes_leave_the_window() -> None:
    breaker = Breaker(window_s=30.0, min_requests=20, sustain_s=0.0)
    for _ in range(30):
        breaker.record(0.0, ok=True)
    for _ in range(25):
        breaker.record(20.0, ok=False)
    assert breaker.tripped(20.0) is None  # 25 of 55
    trip = breaker.tripped(31.0)  # the successes have left; nothing new was recorded
    assert trip is not None
    assert (trip.failures, trip.total, trip.at) == (25, 25, 31.0)


def test_once_tripped_it_stays_tripped() -> None:
    breaker = Breaker(min_requests=20, sustain_s=0.0)
    for _ in range(20):
        breaker.record(0.0, ok=False)
    trip = breaker.tripped(0.0)
    assert trip is not None
    for i in range(500):
        assert breaker.record(1.0 + i, ok=True) is trip
    assert breaker.tripped(10_000.0) is trip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_ratio": 1.0}, "failure_ratio"),
        ({"min_requests": 0}, "min_requests"),
        ({"window_s": 0.5}, "window"),
        ({"sustain_s": 31.0}, "sustain_s"),
        ({"sustain_s": -1.0}, "sustain_s"),
    ],
)
def test_bad_arguments(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Breaker(**kwargs)  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.floats(min_value=0.0, max_value=2.0), st.booleans()), max_size=300))
def test_trip_always_reports_a_ratio_above_threshold_with_enough_requests(
    outcomes: list[tuple[float, bool]],
) -> None:
    breaker = Breaker(window_s=30.0, failure_ratio=0.5, min_requests=20)
    now = 0.0
    for gap, ok in outcomes:
        now += gap
        trip = breaker.record(now, ok)
        if trip is not None:
            assert trip.total >= 20
            assert trip.failures * 2 > trip.total
            assert trip.ratio == trip.failures / trip.total
            assert trip.at <= now


def test_a_dense_burst_trips_only_once_the_failing_has_lasted_half_the_window() -> None:
    breaker = Breaker(window_s=30.0, min_requests=20)
    assert breaker.sustain_s == 15.0
    for i in range(100):  # 100 failures in the first second: plenty of evidence, but not sustained
        assert breaker.record(i * 0.01, ok=False) is None
    for second in range(1, 15):
        assert breaker.record(float(second), ok=False) is None
    trip = breaker.record(15.5, ok=False)
    assert trip is not None and trip.at == 15.5


def test_a_burst_that_ends_before_it_is_sustained_does_not_trip() -> None:
    breaker = Breaker(window_s=10.0, min_requests=10)
    for i in range(30):
        assert breaker.record(i * 0.1, ok=False) is None  # 3 s of failures: under the 5 s needed
    for i in range(200):  # then the server recovers: the failures are outweighed within the window
        assert breaker.record(3.0 + i * 0.05, ok=True) is None
    assert breaker.tripped(13.0) is None


def test_a_client_that_slowed_to_a_trickle_still_trips_when_the_trickle_fails() -> None:
    # 2 s window, 10 requests needed: a client backing off to one request a second never has 10 in the window,
    # so the last 10 outcomes are judged instead, over the time they took.
    breaker = Breaker(window_s=2.0, min_requests=10)
    trip = None
    for second in range(30):
        trip = trip or breaker.record(float(second), ok=False)
    assert trip is not None
    assert trip.at == 10.0  # the tenth outcome gives the evidence; the failing had lasted long before that
    assert (trip.failures, trip.total, trip.window_s) == (10, 10, 9.0)
    assert trip.describe() == "stopped submitting: 10 of 10 requests failed (100 %) over the last 9 s"
    healthy = Breaker(window_s=2.0, min_requests=10)
    for second in range(30):
        assert healthy.record(float(second), ok=second % 3 != 0) is None  # a third failing: no trip
