"""End to end with real sockets: stressor drives the simulator (in its own process) and is checked
against the simulator's ground truth, run by run."""

from __future__ import annotations

import math
from pathlib import Path

import anyio
import pytest

from stressor.engine import Engine, EngineResult
from stressor.metrics import Measure, Metrics, Outcome
from stressor.profile import Profile, parse_profile
from stressor.sim.config import SimConfig
from stressor.sim.records import TruthRecord
from stressor.sim.server import SimulatorProcess, fetch_truth
from stressor.targets.testcalls import TestCallsTarget
from stressor.timestamps import NS_PER_S, ClockAnchor

pytestmark = pytest.mark.e2e

POLL_S = 0.05
# A run is seen to end at the first batch poll after its end (up to one interval) plus that poll's and the
# list request's round trips: a few ms each on loopback, tens of ms when a shared machine is busy. The median
# and p90 must stay within one poll interval (+20 ms), 90 % of runs within one interval plus 50 ms, and the p99
# within a quarter of a second. A wrong measurement (a missed stagger offset, timing from
# the send instead of the due time) fails the lower bound, which allows only the clocks' read-out jitter.
TYPICAL_SLACK_S = 0.05
WORST_SLACK_S = 0.25
PERCENTILE_SLACK_S = 0.02

PROFILE = {
    "grace": "5s",
    "target": {"poll_interval": f"{POLL_S}s"},
    "batch": {"runs": 4, "stagger": "20ms"},
    "scenarios": {"prompts": ["a", "b", "c"]},
    "stages": [{"duration": "3s", "rate": "15/s"}],
}


def drive(profile: Profile, base_url: str) -> EngineResult:
    async def main() -> EngineResult:
        metrics = Metrics(ClockAnchor.now())
        target = TestCallsTarget(base_url, "sk_test_e2e", metrics, poll_interval_s=POLL_S)
        try:
            await target.check()
            return await Engine(profile, target, metrics=metrics).run()
        finally:
            await target.aclose()

    return anyio.run(main)


@pytest.fixture(scope="module")
def outcome() -> tuple[EngineResult, list[TruthRecord]]:
    config = SimConfig.from_text(slots=2, failure_rate=0.2, seed=11, call_duration="lognormal(45,0.4)")
    profile = parse_profile(PROFILE, "e2e.toml", Path())
    with SimulatorProcess(config) as base_url:
        result = drive(profile, base_url)
        truth = fetch_truth(base_url)
    return result, truth


def percentile(values: list[float], p: float) -> float:
    """The smallest value with at least p % of the values at or below it (HdrHistogram's definition)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)]


def test_every_run_is_counted_once_and_matches_the_server(outcome: tuple[EngineResult, list[TruthRecord]]) -> None:
    result, truth = outcome
    runs = result.metrics
    assert runs.planned_runs == 180  # 45 batches x 4
    assert runs.submitted_runs == 180
    assert runs.outcomes[Outcome.OPEN] == 0
    assert runs.outcomes[Outcome.ERRORED] == 0
    ids = [record.run_id for record in result.records]
    assert len(ids) == len(set(ids)) == 180
    by_id = {run.id: run for run in truth}
    assert set(ids) == set(by_id)  # nothing lost, nothing invented
    for record in result.records:
        assert str(record.outcome) == by_id[record.run_id].status


def test_configured_failure_rate_shows(outcome: tuple[EngineResult, list[TruthRecord]]) -> None:
    result, _ = outcome
    assert result.metrics.failure_rate is not None
    assert 0.12 <= result.metrics.failure_rate <= 0.28  # 20 % configured, 180 runs: about +-3 sd


def test_queue_to_completion_agrees_with_ground_truth(outcome: tuple[EngineResult, list[TruthRecord]]) -> None:
    result, truth = outcome
    anchor = result.metrics.anchor
    by_id = {run.id: run for run in truth}
    measured, real = [], []
    for record in result.records:
        assert record.detected_ns is not None
        due_wall = anchor.to_wall_s(record.due_ns)
        completed = by_id[record.run_id].completed
        assert completed is not None
        true_s = completed - due_wall
        ours_s = (record.detected_ns - record.due_ns) / NS_PER_S
        assert ours_s - true_s >= -0.002, record.run_id  # never before the run really ended
        measured.append(ours_s)
        real.append(true_s)
    late = [m - r for m, r in zip(measured, real, strict=True) if m - r > POLL_S + TYPICAL_SLACK_S]
    assert len(late) <= 0.1 * len(measured), late
    summary = result.metrics.recorders[Measure.QUEUE_TO_COMPLETION].summary()
    for p, slack in ((50.0, PERCENTILE_SLACK_S), (90.0, PERCENTILE_SLACK_S), (99.0, WORST_SLACK_S)):
        truth_p = percentile(real, p)
        assert truth_p - 0.002 <= summary.percentiles_s[p] <= truth_p + POLL_S + slack, p


def test_server_side_breakdown_matches_the_truth_to_the_millisecond(
    outcome: tuple[EngineResult, list[TruthRecord]],
) -> None:
    result, truth = outcome
    by_id = {run.id: run for run in truth}
    for record in result.records:
        real = by_id[record.run_id]
        assert real.started is not None and real.completed is not None and real.released is not None
        assert record.started_at is not None and record.completed_at is not None
        assert abs((record.completed_at - record.started_at) - (real.completed - real.started)) <= 0.002
    queued = result.metrics.recorders[Measure.TIME_QUEUED].summary()
    true_queued = [run.started - run.released for run in truth if run.started and run.released]
    assert queued.max_s == pytest.approx(max(true_queued), abs=0.003)
    assert max(true_queued) > 0.01  # 2 slots for ~3 runs in flight: some runs really waited
