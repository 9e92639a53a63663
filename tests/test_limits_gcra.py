"""The shared limiter: requests are spaced at the rate, bursts are bounded, a server pause holds everyone."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stressor.limits import Gcra


def test_unlimited_rate_never_waits() -> None:
    limiter = Gcra(math.inf)
    assert [limiter.reserve(0.0) for _ in range(1000)] == [0.0] * 1000


def test_concurrent_reservations_at_one_instant_queue_one_interval_apart() -> None:
    limiter = Gcra(rate_per_s=10.0)
    waits = [limiter.reserve(100.0) for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_burst_goes_at_once_then_the_rest_is_spaced() -> None:
    limiter = Gcra(rate_per_s=1.0, burst=3)
    waits = [limiter.reserve(0.0) for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 1.0, 2.0, 3.0])


def test_idle_time_refills_the_burst_but_no_more() -> None:
    limiter = Gcra(rate_per_s=2.0, burst=2)
    for _ in range(4):
        limiter.reserve(0.0)
    # Long idle: exactly `burst` requests go free again, not the whole idle time's worth.
    waits = [limiter.reserve(60.0) for _ in range(3)]
    assert waits == pytest.approx([0.0, 0.0, 0.5])


def test_arrivals_at_the_rate_never_wait() -> None:
    limiter = Gcra(rate_per_s=4.0)
    assert all(limiter.reserve(i * 0.25) == pytest.approx(0.0) for i in range(100))


def test_pause_holds_every_later_reservation_and_resumes_at_the_rate() -> None:
    limiter = Gcra(rate_per_s=2.0, burst=4)
    limiter.pause_until(10.0)
    waits = [limiter.reserve(1.0) for _ in range(4)]
    # Not a burst of 4 at t=10: after a 429 the client resumes at the steady pace.
    assert [1.0 + w for w in waits] == pytest.approx([10.0, 10.5, 11.0, 11.5])
    assert limiter.paused_until == 10.0


def test_pause_applies_to_an_unlimited_limiter_too() -> None:
    limiter = Gcra(math.inf)
    limiter.pause_until(5.0)
    assert [limiter.reserve(2.0) for _ in range(3)] == [3.0, 3.0, 3.0]
    assert limiter.reserve(5.0) == 0.0


def test_an_earlier_pause_does_not_shorten_a_later_one() -> None:
    limiter = Gcra(rate_per_s=1.0)
    limiter.pause_until(20.0)
    limiter.pause_until(8.0)
    assert limiter.reserve(0.0) == pytest.approx(20.0)


def test_a_pause_in_the_past_changes_nothing() -> None:
    limiter = Gcra(rate_per_s=1.0)
    limiter.pause_until(3.0)
    assert limiter.reserve(50.0) == 0.0
    assert limiter.reserve(50.0) == pytest.approx(1.0)


def test_set_rate_keeps_booked_slots_and_changes_later_spacing() -> None:
    limiter = Gcra(rate_per_s=10.0)
    assert limiter.reserve(0.0) == 0.0
    limiter.set_rate(1.0)
    assert limiter.rate_per_s == 1.0
    waits = [limiter.reserve(0.0) for _ in range(3)]
    # The first booking pushed TAT to 0.1 at the old rate; later ones are one second apart.
    assert waits == pytest.approx([0.1, 1.1, 2.1])


def test_set_rate_to_unlimited_releases_the_queue_growth() -> None:
    limiter = Gcra(rate_per_s=1.0)
    for _ in range(3):
        limiter.reserve(0.0)
    limiter.set_rate(math.inf)
    # Slots booked before stay booked (TAT is 3.0); nothing is added after them.
    assert limiter.reserve(0.0) == pytest.approx(3.0)
    assert limiter.reserve(0.0) == pytest.approx(3.0)


def test_peek_does_not_book() -> None:
    limiter = Gcra(rate_per_s=1.0)
    limiter.reserve(0.0)
    assert limiter.peek(0.0) == pytest.approx(1.0)
    assert limiter.peek(0.0) == pytest.approx(1.0)
    assert limiter.reserve(0.0) == pytest.approx(1.0)


@pytest.mark.parametrize("rate", [0.0, -1.0, math.nan, -math.inf])
def test_bad_rate_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        Gcra(rate)


def test_bad_burst_and_pause_are_refused() -> None:
    with pytest.raises(ValueError, match="burst"):
        Gcra(1.0, burst=0)
    with pytest.raises(ValueError, match="finite"):
        Gcra(1.0).pause_until(math.nan)
    with pytest.raises(ValueError, match="finite"):
        Gcra(1.0).pause_until(math.inf)


@given(
    rate=st.floats(min_value=0.5, max_value=1000.0),
    burst=st.integers(min_value=1, max_value=10),
    gaps=st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=200),
    pause=st.one_of(st.none(), st.tuples(st.integers(min_value=0, max_value=199), st.floats(0.0, 5.0))),
)
def test_send_times_never_exceed_rate_and_burst(
    rate: float, burst: int, gaps: list[float], pause: tuple[int, float] | None
) -> None:
    """In any stretch of time, at most `burst + length * rate` requests go, in the order they reserved."""
    limiter = Gcra(rate, burst)
    interval = 1.0 / rate
    now = 0.0
    sends: list[float] = []
    for index, gap in enumerate(gaps):
        now += gap
        if pause is not None and pause[0] == index:
            limiter.pause_until(now + pause[1])
        wait = limiter.reserve(now)
        assert wait >= 0.0
        if pause is not None and index >= pause[0]:
            # Every reservation after the pause was set waits at least until it ends.
            assert now + wait >= limiter.paused_until - 1e-9  # type: ignore[operator]
        sends.append(now + wait)
    assert sends == sorted(sends)  # FIFO: nobody overtakes an earlier reservation
    for i in range(len(sends)):
        for j in range(i + burst, min(len(sends), i + burst + 20)):
            assert sends[j] - sends[i] >= (j - i - (burst - 1)) * interval - 1e-6
