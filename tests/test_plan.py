"""The pacer: due times follow the integral of the rate, whatever the stage list."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from stressor.plan import estimate, open_starts, stage_at, stage_windows, target_in_flight
from stressor.profile import OpenLoad, Profile, parse_profile


def profile_of(stages: list[dict], **extra: object) -> Profile:
    return parse_profile({"stages": stages, **extra}, "p.toml", Path())


def expected_arrivals(profile: Profile, t: float) -> float:
    """Integral of the open rate from 0 to t, restarted (rounded up) after non-open spells like the pacer."""
    total, previous_open = 0.0, False
    for window in stage_windows(profile):
        load = window.stage.load
        if not isinstance(load, OpenLoad):
            previous_open = False
            continue
        if not previous_open:
            total = float(_ceil(total))
        previous_open = True
        span = min(max(t - window.start_s, 0.0), window.stage.duration_s)
        r0, r1, d = load.batches_per_s.start, load.batches_per_s.end, window.stage.duration_s
        total += r0 * span + (r1 - r0) * span * span / (2 * d)
    return total


def _ceil(x: float) -> int:
    return int(x) + (x > int(x) + 1e-9)


def test_constant_rate_is_evenly_spaced() -> None:
    profile = profile_of([{"duration": "2s", "rate": "4/s"}])
    assert [s.due_s for s in open_starts(profile)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]


def test_ramp_from_zero_speeds_up() -> None:
    profile = profile_of([{"duration": "10s", "rate": {"from": 0, "to": "2/s"}}])
    dues = [s.due_s for s in open_starts(profile)]
    assert len(dues) == 10  # integral = 10 batches
    gaps = [b - a for a, b in itertools.pairwise(dues)]
    assert all(later < earlier for earlier, later in itertools.pairwise(gaps))


def test_variants_are_interleaved_and_pauses_start_nothing() -> None:
    profile = profile_of(
        [
            {"duration": "1s", "rate": "4/s"},
            {"duration": "1s", "pause": True},
            {"duration": "1s", "rate": "2/s"},
        ],
        variants=[{"name": "spark"}, {"name": "bolt"}],
    )
    starts = list(open_starts(profile))
    assert [s.variant for s in starts] == [0, 1, 0, 1, 0, 1]
    assert [s.due_s for s in starts] == [0.0, 0.25, 0.5, 0.75, 2.0, 2.5]  # resumes at the pause's end
    assert all(not (1.0 <= s.due_s < 2.0) for s in starts)


def test_closed_stage_target_ramps() -> None:
    profile = profile_of([{"duration": "10s", "in_flight": {"from": 10, "to": 40}}])
    window = stage_windows(profile)[0]
    assert [target_in_flight(window, t) for t in (0, 5, 10)] == [10, 25, 40]
    assert stage_at(profile, 3.0) == window
    assert stage_at(profile, 10.0) is None


rates = st.one_of(st.just(0.0), st.floats(min_value=0.01, max_value=50))
stage_lists = st.lists(
    st.one_of(
        st.builds(lambda d, a, b: {"duration": d, "rate": {"from": a, "to": b}}, st.floats(0.1, 20), rates, rates),
        st.builds(lambda d, a: {"duration": d, "rate": a}, st.floats(0.1, 20), rates),
        st.builds(lambda d: {"duration": d, "pause": True}, st.floats(0.1, 5)),
        st.builds(lambda d, n: {"duration": d, "in_flight": n}, st.floats(0.1, 5), st.integers(0, 50)),
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(stage_lists, st.lists(st.floats(0, 1), min_size=1, max_size=10))
def test_cumulative_starts_follow_the_integral_within_one_batch(stages: list[dict], points: list[float]) -> None:
    profile = profile_of(stages)
    starts = list(open_starts(profile))
    dues = [s.due_s for s in starts]
    assert dues == sorted(dues)
    assert [s.seq for s in starts] == list(range(len(starts)))
    for start in starts:  # every start lies inside an open stage of its own index
        window = stage_windows(profile)[start.stage]
        assert isinstance(window.stage.load, OpenLoad)
        assert window.start_s - 1e-9 <= start.due_s < window.end_s + 1e-9
    for fraction in points:
        t = fraction * profile.duration_s
        started = sum(1 for due in dues if due <= t)
        assert abs(started - expected_arrivals(profile, t)) <= 1 + 1e-6


def test_estimate_counts_runs_cost_and_peak() -> None:
    profile = profile_of(
        [{"duration": "60s", "rate": "1/s"}, {"duration": "60s", "in_flight": 20}],
        batch={"runs": 5, "stagger": "1s"},
        mean_call_duration="45s",
        target={"poll_interval": "1s"},
        cost={"cost_per_run_cents": 8, "charge_multiplier": 2},
    )
    stages, total = estimate(profile)
    assert (stages[0].batches, stages[0].runs) == (60, 300)
    assert stages[0].cost_cents == 300 * 16
    # Little's law: 5 runs/s x (2 s mean stagger offset + 45 s call + 1 s poll) = 240 in flight.
    assert stages[0].peak_in_flight == 240
    assert stages[1].peak_in_flight == 20
    assert total.runs == stages[0].runs + stages[1].runs
    assert total.cost_cents == total.runs * 16
    assert total.requests > total.batches  # at least the POSTs and the polls


def test_short_stages_and_closed_stages_are_not_overestimated() -> None:
    # 10 s of 1 batch/s with 55 s calls: Little's law would say 55 x 5 in flight, but only 50 runs start.
    short = profile_of([{"duration": "10s", "rate": "1/s"}], batch={"runs": 5}, mean_call_duration="55s")
    stages, _ = estimate(short)
    assert stages[0].runs == 50
    assert stages[0].peak_in_flight <= stages[0].runs
    closed = profile_of([{"duration": "10s", "in_flight": 16}], mean_call_duration="55s")
    stages, _ = estimate(closed)
    assert stages[0].runs >= 16  # the runs in flight at the peak are runs too
