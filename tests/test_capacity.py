"""Capacity search, the pure part: levels, the one-stage profile of a step, the knee."""

from __future__ import annotations

from pathlib import Path

import pytest

from stressor.capacity import Step, knee, levels, measure_step, step_profile
from stressor.document import load_results
from stressor.profile import ClosedLoad, OpenLoad, Ramp, parse_profile
from stressor.thresholds import Status, Verdict, parse_threshold, parse_thresholds


def step(level: float, held: bool) -> Step:
    threshold = parse_threshold("failure_rate < 5%")
    verdict = Verdict(threshold, Status.PASSED if held else Status.FAILED, 0.0, "")
    return Step(level, 0.1, 0.2, 0.3, 0.0, 1.0, (verdict,))


def test_levels_step_up_to_the_maximum() -> None:
    assert levels(2, 2, 9) == [2, 4, 6, 8]
    assert levels(0.5, 0.25, 1) == [0.5, 0.75, 1.0]
    with pytest.raises(ValueError):
        levels(0, 1, 5)


def test_the_knee_lies_between_the_last_step_that_held_and_the_first_that_broke() -> None:
    steps = [step(2, True), step(4, True), step(6, False)]
    found = knee(steps)
    assert (found.last_held.level, found.first_broke.level) == (4, 6)  # type: ignore[union-attr]
    assert knee([step(2, False)]).last_held is None
    assert knee([step(2, True)]).first_broke is None


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
