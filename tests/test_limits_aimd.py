"""The adaptive concurrency limit grows only under real load and backs off once per overload episode."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stressor.limits import AimdLimit


def test_grows_by_one_per_success_only_while_busy() -> None:
    aimd = AimdLimit(10, maximum=100)
    assert aimd.on_success(0.0, in_flight=3) == 10  # idle: nothing learned about capacity
    assert aimd.on_success(0.1, in_flight=9) == 10
    assert aimd.on_success(0.2, in_flight=10) == 11  # the limit was used
    assert aimd.on_success(0.3, in_flight=12) == 12
    assert aimd.limit == 12


def test_never_grows_past_maximum() -> None:
    aimd = AimdLimit(9, maximum=10, increase=5)
    assert aimd.on_success(0.0, in_flight=9) == 10
    assert aimd.on_success(0.1, in_flight=10) == 10


def test_a_burst_of_429s_cuts_once_per_window() -> None:
    aimd = AimdLimit(100, maximum=200, cooldown_s=1.0)
    limits = [aimd.on_overload(10.0 + i * 0.01) for i in range(50)]  # 50 overloads within half a second
    assert set(limits) == {90}
    assert aimd.on_overload(10.99) == 90
    assert aimd.on_overload(11.0) == 81  # the next window: a new overload episode
    assert aimd.on_overload(12.5) == 72


def test_cuts_never_go_below_minimum() -> None:
    aimd = AimdLimit(3, minimum=2, maximum=10, cooldown_s=0.0)
    assert [aimd.on_overload(float(t)) for t in range(4)] == [2, 2, 2, 2]
    single = AimdLimit(1, maximum=10)
    assert single.on_overload(0.0) == 1


def test_small_limits_still_shrink_by_at_least_one() -> None:
    aimd = AimdLimit(5, maximum=10, cooldown_s=0.0)
    assert [aimd.on_overload(float(t)) for t in range(4)] == [4, 3, 2, 1]


def test_successes_right_after_a_cut_do_not_undo_it() -> None:
    aimd = AimdLimit(100, maximum=200)
    aimd.on_overload(5.0)
    # Responses to the 100 requests sent before the cut: in flight is still above the new limit.
    for i in range(50):
        aimd.on_success(5.0 + i * 0.01, in_flight=100 - i)
    assert aimd.limit == 90
    assert aimd.on_success(6.0, in_flight=90) == 91


def test_slow_server_stretches_the_cooldown_to_its_rtt() -> None:
    aimd = AimdLimit(50, maximum=100, cooldown_s=1.0)
    for _ in range(20):
        aimd.on_success(0.0, in_flight=1, rtt=4.0)
    assert aimd.smoothed_rtt == pytest.approx(4.0)
    assert aimd.on_overload(10.0) == 45
    assert aimd.on_overload(12.0) == 45  # 2 s later, still within one round trip
    assert aimd.on_overload(14.0) == 40


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": 0, "maximum": 5}, "initial"),
        ({"initial": 6, "maximum": 5}, "initial"),
        ({"initial": 1, "minimum": 0, "maximum": 5}, "minimum"),
        ({"initial": 3, "minimum": 4, "maximum": 2}, "maximum"),
        ({"initial": 3, "maximum": 5, "decrease_factor": 1.0}, "decrease_factor"),
        ({"initial": 3, "maximum": 5, "increase": 0}, "increase"),
        ({"initial": 3, "maximum": 5, "cooldown_s": -1.0}, "cooldown_s"),
    ],
)
def test_bad_arguments(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AimdLimit(**kwargs)  # type: ignore[arg-type]


@given(
    st.lists(
        st.tuples(st.floats(min_value=0.0, max_value=0.3), st.booleans(), st.integers(min_value=0, max_value=60)),
        max_size=300,
    )
)
def test_limit_stays_in_range_and_cuts_are_spaced(events: list[tuple[float, bool, int]]) -> None:
    aimd = AimdLimit(20, minimum=2, maximum=50, cooldown_s=1.0)
    now = 0.0
    last_cut: float | None = None
    for gap, overload, in_flight in events:
        now += gap
        before = aimd.limit
        after = aimd.on_overload(now) if overload else aimd.on_success(now, in_flight)
        assert 2 <= after <= 50
        if after < before:
            assert overload
            assert last_cut is None or now - last_cut >= 1.0
            last_cut = now
        if after > before:
            assert not overload
            assert in_flight >= before
