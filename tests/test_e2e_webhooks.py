"""End to end: runs ended by signed webhooks from the simulator, lost and repeated deliveries, grades,
and coordinated omission shown against the simulator's ground truth."""

from __future__ import annotations

import math

import pytest
from sessions import profile_of, run_session

from stressor.metrics import Measure, Outcome
from stressor.session import SessionResult

pytestmark = pytest.mark.e2e


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]


BASE = {
    "grace": "5s",
    "target": {"poll_interval": "50ms"},
    "batch": {"runs": 4, "stagger": "20ms"},
    "stages": [{"duration": "2s", "rate": "10/s"}],
}


def assert_every_run_once_as_the_server_says(outcome: SessionResult, planned: int) -> None:
    result, truth = outcome.engine, {run.id: run for run in outcome.truth or ()}
    ids = [record.run_id for record in result.records]
    assert len(ids) == len(set(ids)) == planned
    assert set(ids) == set(truth)
    assert result.metrics.outcomes[Outcome.OPEN] == 0
    for record in result.records:
        assert str(record.outcome) == truth[record.run_id].status


def test_with_polling_off_webhooks_alone_end_every_run_and_time_it_closely() -> None:
    profile = profile_of({**BASE, "webhooks": {"enabled": True, "fallback": "off"}})
    outcome = run_session(profile, {"seed": 5, "failure_rate": 0.2})
    assert_every_run_once_as_the_server_says(outcome, 80)
    result = outcome.engine
    assert not any(key.startswith(("poll_batch", "list_runs")) for key in result.metrics.requests)
    assert outcome.webhooks is not None and outcome.webhooks.bad_signature_total == 0
    # The client saw each end when its webhook arrived: after the true end, and within a few ms of the
    # simulator's own record of the delivery (its 2xx came back after our receiver stamped the event).
    truth = {run.id: run for run in outcome.truth or ()}
    anchor = result.metrics.anchor
    lags = []
    for record in result.records:
        real = truth[record.run_id]
        assert record.detected_ns is not None and real.completed is not None and real.webhook_delivered
        seen = anchor.to_wall_s(record.detected_ns)
        assert seen >= real.completed - 0.002
        lags.append(real.webhook_delivered - seen)
    assert percentile(lags, 50) >= -0.002  # the delivery's answer comes after the event is stamped
    assert percentile(lags, 90) < 0.05


def test_lost_repeated_and_reordered_webhooks_still_end_every_run_once() -> None:
    profile = profile_of({**BASE, "webhooks": {"enabled": True, "fallback": "300ms"}})
    simulator = {"seed": 8, "webhook_drop_rate": 0.3, "webhook_duplicate_rate": 0.5, "webhook_reorder": True}
    outcome = run_session(profile, simulator)
    assert_every_run_once_as_the_server_says(outcome, 80)
    assert outcome.late_polls > 0  # the lost ones were found by polling
    assert outcome.webhooks is not None and outcome.webhooks.duplicates + outcome.webhooks.replayed > 0


def test_grades_are_normalised_and_quality_failures_counted_apart() -> None:
    profile = profile_of(
        {**BASE, "webhooks": {"enabled": True, "fallback": "off"}, "grades": {"threshold": 0.8, "wait": "0.5s"}}
    )
    simulator = {
        "seed": 2,
        "grade_scale": 100,
        "grade_twice": True,
        "grade_delay": 0.05,
        "grade_score": "uniform(0.5,1.0)",
    }
    outcome = run_session(profile, simulator)
    result = outcome.engine
    truth = {run.id: run for run in outcome.truth or ()}
    grades = result.metrics.grades
    assert len(grades.scores) == 80 and grades.ungraded == 0
    for record in result.records:
        # the final (full) grade, on 0..1, whatever scale the server wrote
        assert record.grade == pytest.approx(truth[record.run_id].grade_score, abs=1e-9)
    assert grades.below_threshold == sum(1 for r in result.records if r.grade is not None and r.grade < 0.8)
    assert 0 < grades.below_threshold < 80
    assert result.metrics.failure_rate == 0  # quality failures are not call failures


@pytest.mark.parametrize(("webhooks", "detection_allowance_s"), [(False, 1.0), (True, 0.5)])
def test_a_server_stall_shows_in_the_p99_as_in_the_ground_truth(webhooks: bool, detection_allowance_s: float) -> None:
    # Open model at 20 batches/s for 6 s; the simulator holds every request for 2 s from 3 s after it
    # started. Runs due in the stall cannot even be created until it ends: a closed-loop tester would hide
    # that (coordinated omission); measured from the due time, it must show.
    profile = profile_of(
        {
            "grace": "5s",
            "target": {"poll_interval": "50ms"},
            "batch": {"runs": 1},
            "stages": [{"duration": "6s", "rate": "20/s"}],
            "webhooks": {"enabled": webhooks, "fallback": "off"},
        }
    )
    outcome = run_session(profile, {"seed": 1, "stall": "at=3s,for=2s", "slots": 200})
    result, truth = outcome.engine, {run.id: run for run in outcome.truth or ()}
    anchor = result.metrics.anchor
    real = [truth[r.run_id].completed - anchor.to_wall_s(r.due_ns) for r in result.records]  # type: ignore[operator]
    ours = result.metrics.recorders[Measure.QUEUE_TO_COMPLETION].summary()
    truth_p99 = percentile(real, 99)
    assert truth_p99 > 1.5  # the stall is in the truth...
    # ...and in ours: never below it, above it only by the detection delay. The 40 requests the stall releases
    # at once take the client (and, for webhooks, the simulator's sender) a few hundred ms to work through:
    # httpx's pool recovers slowly from a stall (engineering notes), which the transport work addresses.
    assert truth_p99 - 0.002 <= ours.percentiles_s[99.0] <= truth_p99 + detection_allowance_s
    assert ours.percentiles_s[50.0] < 0.5  # outside the stall, calls stay short
