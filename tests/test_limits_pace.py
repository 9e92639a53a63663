"""The rate learned from refusals (cut on a 429/503, raised slowly while it holds requests) and held wall time."""

from __future__ import annotations

import math

import pytest

from stressor.limits import AimdRate, HeldTime


def accepted(rate: AimdRate, start: float, count: int, spacing: float, *, bound: bool = False) -> float:
    now = start
    for _ in range(count):
        rate.on_accepted(now, bound=bound)
        now += spacing
    return now


def test_no_rate_is_guessed_before_a_refusal() -> None:
    rate = AimdRate()
    accepted(rate, 0.0, 100, 0.01, bound=True)
    assert rate.rate == math.inf and rate.cuts == 0


def test_a_refusal_cuts_to_half_of_what_the_server_accepted_over_the_last_second() -> None:
    rate = AimdRate()
    now = accepted(rate, 5.05, 40, 0.02)  # 40 accepted in [5.05, 5.85): 40/s
    assert rate.on_refusal(now) == pytest.approx(20.0)
    assert rate.on_refusal(now + 0.5) == pytest.approx(20.0)  # within the cooldown: the same congestion event
    later = accepted(rate, now + 1.12, 12, 0.08)  # sending at 12/s now, all accepted
    assert rate.on_refusal(later - 0.07) == pytest.approx(6.0)  # half of the lower of the rate and what was accepted
    assert rate.cuts == 2


def test_the_floor_holds_when_nothing_was_accepted() -> None:
    rate = AimdRate(floor=5.0)
    assert rate.on_refusal(0.0) == 5.0
    assert rate.on_refusal(10.0) == 5.0


def test_the_rate_grows_slowly_and_only_while_it_binds() -> None:
    rate = AimdRate(increase=0.02)
    rate.on_refusal(0.0)  # the floor: 1/s
    accepted(rate, 0.5, 5, 0.1, bound=True)  # within the cooldown: no growth
    assert rate.rate == 1.0
    accepted(rate, 2.0, 101, 0.1, bound=True)  # 10 s held by the rate
    assert rate.rate == pytest.approx(1.02**10, rel=0.01)
    grown = rate.rate
    accepted(rate, 20.0, 100, 0.1, bound=False)  # answers, but nothing waited on the rate: no evidence of room
    assert rate.rate == grown
    accepted(rate, 40.0, 2, 30.0, bound=True)  # a quiet half minute counts as one second at most
    assert rate.rate == pytest.approx(grown * 1.02**2)  # two answers, each after a second or more


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"floor": 0.0}, "floor"), ({"decrease_factor": 1.0}, "decrease_factor"), ({"increase": -0.1}, "increase")],
)
def test_bad_arguments(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AimdRate(**kwargs)


def test_held_time_counts_overlapping_holds_once() -> None:
    held = HeldTime()
    assert held.hold(0.0, 1.0) == 1.0
    assert held.hold(0.0, 0.5) == 0.0  # a second request held at the same time: no more wall time
    assert held.hold(0.5, 1.5) == pytest.approx(0.5)
    assert held.hold(3.0, 3.25) == 0.25  # a later, separate hold
    assert held.hold(4.0, 4.0) == 0.0
    assert held.total_s == pytest.approx(1.75)
