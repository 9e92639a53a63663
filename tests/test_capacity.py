"""Capacity search, the pure part: levels, the one-stage profile of a step, the next level to try (climb,
re-check a break, narrow the knee), the knee, and how long a search may take. No sockets: each "step" is the
verdict of a scripted service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stressor.capacity import (
    SearchPlan,
    Step,
    Try,
    knee,
    levels,
    measure_step,
    narrowing_steps,
    next_try,
    search_plan,
    step_profile,
    time_estimate,
)
from stressor.document import load_results
from stressor.profile import ClosedLoad, OpenLoad, Ramp, parse_profile
from stressor.thresholds import Status, Verdict, parse_threshold, parse_thresholds


def step(level: float, held: bool, *, recheck: bool = False, phase: str = "climb") -> Step:
    threshold = parse_threshold("failure_rate < 5%")
    verdict = Verdict(threshold, Status.PASSED if held else Status.FAILED, 0.0, "")
    return Step(level, 0.1, 0.2, 0.3, 0.0, 1.0, (verdict,), phase=phase, recheck=recheck)  # type: ignore[arg-type]


def test_levels_step_up_to_the_maximum() -> None:
    assert levels(2, 2, 9) == [2, 4, 6, 8]
    assert levels(0.5, 0.25, 1) == [0.5, 0.75, 1.0]
    with pytest.raises(ValueError):
        levels(0, 1, 5)


def test_the_knee_lies_between_the_last_level_held_and_the_first_broken() -> None:
    steps = [step(2, True), step(4, True), step(6, False), step(6, False, recheck=True)]
    found = knee(steps)
    assert (found.last_held.level, found.first_broke.level) == (4, 6)  # type: ignore[union-attr]
    assert found.first_broke.recheck  # type: ignore[union-attr]  # the measurement that confirmed it
    assert knee([step(2, False), step(2, False, recheck=True)]).last_held is None
    assert knee([step(2, True)]).first_broke is None


def test_a_break_counts_only_once_its_recheck_broke_too() -> None:
    assert knee([step(2, True), step(4, False)]).first_broke is None  # not re-checked yet
    noisy = knee([step(2, True), step(4, False), step(4, True, recheck=True)])
    assert noisy.first_broke is None and noisy.last_held.level == 4  # type: ignore[union-attr]


def test_a_step_is_the_profile_with_one_stage_at_the_level() -> None:
    profile = parse_profile(
        {"batch": {"runs": 3, "stagger": "1s"}, "stages": [{"duration": "1m", "rate": 1}], "thresholds": ["open == 0"]},
        "p.toml",
        Path(),
    )
    closed = step_profile(profile, 12, "closed", 30)
    assert [s.load for s in closed.stages] == [ClosedLoad(Ramp(12, 12))]
    assert closed.stages[0].batch.runs == 3 and closed.stages[0].duration_s == 30
    assert closed.thresholds == ()  # the step's SLOs are the search's, not the profile's
    assert step_profile(profile, 2.5, "open", 10).stages[0].load == OpenLoad(Ramp(2.5, 2.5))


def test_a_step_is_measured_from_its_results_document() -> None:
    results = load_results(
        {
            "elapsed_s": 10.0,
            "runs": {"completed": 45, "failed": 5},
            "failure_rate": 0.1,
            "measures": {"queue_to_completion": {"count": 50, "p50": 0.5, "p95": 1.5, "p99": 2.5}},
        }
    )
    slos = parse_thresholds(["queue_to_completion.p95 < 2s", "failure_rate < 5%"])
    step = measure_step(8, results, slos)
    assert (step.p50_s, step.p95_s, step.p99_s, step.failure_rate) == (0.5, 1.5, 2.5, 0.1)
    assert step.completed_per_s == 4.5
    assert [v.status for v in step.verdicts] == [Status.PASSED, Status.FAILED] and not step.held


# ---------------------------------------------------------------------------------------------- the search


def search(plan: SearchPlan, holds: Callable[[float, int], bool]) -> list[Try]:
    """Run a whole search against a scripted service: ``holds(level, nth)`` says whether the nth measurement
    (from 0) of ``level`` holds. The tries, in order."""
    steps: list[Step] = []
    tries: list[Try] = []
    while (attempt := next_try(plan, steps)) is not None:
        assert len(tries) < 500, "the search does not end"
        nth = sum(s.level == attempt.level for s in steps)
        tries.append(attempt)
        steps.append(step(attempt.level, holds(attempt.level, nth), recheck=attempt.recheck, phase=attempt.phase))
    return tries


def capacity_of(limit: float) -> Callable[[float, int], bool]:
    return lambda level, _: level <= limit


def shown(tries: list[Try]) -> list[str]:
    return [f"{t.level:g}" + ("r" if t.recheck else "") + ("" if t.phase == "climb" else "n") for t in tries]


def test_the_search_climbs_to_the_first_break_rechecks_it_and_bisects_to_the_knee() -> None:
    plan = search_plan("closed", 2, 2, 64)
    assert shown(search(plan, capacity_of(9))) == ["2", "4", "6", "8", "10", "10r", "9n"]
    steps = [step(t.level, t.level <= 9, recheck=t.recheck) for t in search(plan, capacity_of(9))]
    found = knee(steps)
    assert (found.last_held.level, found.first_broke.level) == (9, 10)  # type: ignore[union-attr]


def test_a_wider_step_is_bisected_down_to_one_run_in_flight() -> None:
    plan = search_plan("closed", 8, 8, 64)
    assert shown(search(plan, capacity_of(13))) == ["8", "16", "16r", "12n", "14n", "14rn", "13n"]


def test_one_noisy_step_does_not_end_the_search() -> None:
    def noisy(level: float, nth: int) -> bool:
        return level <= 9 and not (level == 4 and nth == 0)  # 4 breaks once, then holds

    assert shown(search(search_plan("closed", 2, 2, 64), noisy)) == ["2", "4", "4r", "6", "8", "10", "10r", "9n"]


def test_a_break_while_narrowing_is_rechecked_too() -> None:
    def noisy(level: float, nth: int) -> bool:
        return level <= 13 and not (level == 12 and nth == 0)

    tries = search(search_plan("closed", 8, 8, 64), noisy)
    assert shown(tries) == ["8", "16", "16r", "12n", "12rn", "14n", "14rn", "13n"]


def test_a_first_level_that_breaks_is_narrowed_below_it() -> None:
    assert shown(search(search_plan("closed", 4, 4, 64), capacity_of(1))) == ["4", "4r", "2n", "2rn", "1n"]
    assert shown(search(search_plan("closed", 4, 4, 64), capacity_of(0))) == ["4", "4r", "2n", "2rn", "1n", "1rn"]


def test_a_search_that_never_breaks_climbs_the_whole_ladder() -> None:
    plan = search_plan("closed", 2, 2, 10)
    assert shown(search(plan, capacity_of(100))) == ["2", "4", "6", "8", "10"]


def test_an_open_search_bisects_to_its_resolution() -> None:
    plan = search_plan("open", 2, 2, 20, 0.5)
    assert shown(search(plan, capacity_of(7.3))) == ["2", "4", "6", "8", "8r", "7n", "7.5n", "7.5rn"]
    assert search_plan("open", 2, 2, 20).resolution == 0.5  # a quarter of the step


def test_closed_levels_are_whole_runs_in_flight() -> None:
    assert search_plan("closed", 2, 2, 64).resolution == 1
    with pytest.raises(ValueError, match=r"^closed levels are whole runs in flight: --start 2.5, --resolution 0.5 are"):
        search_plan("closed", 2.5, 2, 64, 0.5)
    with pytest.raises(ValueError, match=r"^closed levels are whole runs in flight: --max 9.5 is not$"):
        search_plan("closed", 2, 2, 9.5)
    with pytest.raises(ValueError, match="--resolution must be greater than 0"):
        search_plan("open", 2, 2, 64, 0)


def test_the_default_search_takes_16_minutes_to_climb_and_says_the_most_it_can_take() -> None:
    plan = search_plan("closed", 2, 2, 64)  # the command's defaults: 32 levels of 30 s
    assert (len(plan.ladder), narrowing_steps(plan)) == (32, 1)
    estimate = time_estimate(plan, 30, 30)
    assert (estimate.climb_steps, estimate.climb_s) == (32, 960)
    assert (estimate.most_steps, estimate.most_s) == (66, 66 * 60)


@settings(max_examples=200, deadline=None)
@given(
    model=st.sampled_from(["closed", "open"]),
    start=st.integers(1, 6),
    step_by=st.integers(1, 9),
    rungs=st.integers(1, 12),
    resolution=st.sampled_from([None, 1.0, 2.0, 3.0]),
    outcomes=st.lists(st.booleans(), max_size=80),
)
def test_any_search_ends_within_the_most_steps_announced(
    model: str, start: int, step_by: int, rungs: int, resolution: float | None, outcomes: list[bool]
) -> None:
    # Whatever the service answers (noise on every measurement), the search ends, within the estimate.
    plan = search_plan(model, start, step_by, start + step_by * (rungs - 1), resolution)  # type: ignore[arg-type]
    answers = iter(outcomes)
    tries = search(plan, lambda level, nth: next(answers, level <= start))
    assert len(tries) <= time_estimate(plan, 1, 0).most_steps
    levels_tried = [t.level for t in tries]
    assert len(levels_tried) - sum(t.recheck for t in tries) == len(set(levels_tried))  # a level twice: a re-check
