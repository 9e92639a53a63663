"""The server's clock offset, bounded by its stamps of requests this client timed."""

from __future__ import annotations

import pytest

from stressor.targets.server_clock import ServerClock


def test_no_stamp_no_estimate() -> None:
    assert ServerClock().estimate() is None


def test_a_server_six_seconds_behind_is_seen_within_the_round_trips() -> None:
    clock = ServerClock()
    # Requests sent at t, answered 20 ms later; the server stamped them 10 ms in, on a clock 6 s behind.
    for t in (1000.0, 1001.0, 1002.5):
        clock.observe_stamp(t, t + 0.020, t + 0.010 - 6.0)
    estimate = clock.estimate()
    assert estimate is not None and estimate.source == "created_at" and estimate.samples == 3
    assert estimate.offset_s == pytest.approx(-6.0, abs=0.011)
    assert estimate.error_s <= 0.011
    assert estimate.offset_s - estimate.error_s <= -6.0 <= estimate.offset_s + estimate.error_s


def test_stamps_win_over_the_coarser_date_header() -> None:
    clock = ServerClock()
    clock.observe_date(1000.0, 1000.1, 1006.0)  # Date: whole seconds, server ~6 s ahead
    first = clock.estimate()
    assert first is not None and first.source == "date" and first.error_s >= 0.5
    assert first.offset_s - first.error_s <= 6.0 <= first.offset_s + first.error_s
    clock.observe_stamp(1001.0, 1001.02, 1007.01)
    second = clock.estimate()
    assert second is not None and second.source == "created_at" and second.error_s < 0.02


def test_bounds_that_disagree_fall_back_to_the_median_with_their_spread() -> None:
    clock = ServerClock()
    clock.observe_stamp(1000.0, 1000.01, 1000.005)  # offset ~0
    clock.observe_stamp(2000.0, 2000.01, 2003.005)  # then the server clock stepped 3 s ahead
    clock.observe_stamp(3000.0, 3000.01, 3003.005)
    estimate = clock.estimate()
    assert estimate is not None
    assert estimate.offset_s == pytest.approx(3.0, abs=0.01)
    assert estimate.error_s >= 3.0  # and it says how unsure that is
