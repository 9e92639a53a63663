"""End to end: stressor drives the simulator (in memory, on virtual time) and is checked against the
simulator's ground truth, run by run."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.memory import in_memory
from support.virtual import run

from stressor.clock import anchor_of
from stressor.engine import Engine, EngineResult
from stressor.metrics import PERCENTILES, LatencyRecorder, Measure, Metrics, Outcome
from stressor.profile import Profile, parse_profile
from stressor.sim.config import SimConfig
from stressor.sim.records import TruthRecord
from stressor.targets.testcalls.target import TestCallsTarget
from stressor.timestamps import NS_PER_S

# A long poll interval, so that the detection delay it causes (up to one interval) dominates the request round
# trips and the noise of a busy machine. A run is seen to end at the first batch poll after its end plus that
# poll's and the list request's round trips; the goal is one interval + 1 ms. SLACK_S covers the round
# trips when 2 cores are shared by many processes; a target that polls at twice the interval misses every bound
# by up to a whole interval (see the guard test below). A wrong measurement (a missed stagger offset, timing
# from the send instead of the due time) fails the lower bound, which allows only the clocks' read-out jitter.
POLL_S = 0.2
SLACK_S = 0.04
CLOCK_JITTER_S = 0.002

PROFILE = {
    "grace": "5s",
    "target": {"poll_interval": f"{POLL_S}s"},
    "batch": {"runs": 4, "stagger": "20ms"},
    "scenarios": {"prompts": ["a", "b", "c"]},
    "stages": [{"duration": "3s", "rate": "15/s"}],
}


async def drive(profile: Profile, config: SimConfig, poll_s: float) -> tuple[EngineResult, list[TruthRecord]]:
    async with in_memory(config) as sim:
        metrics = Metrics(anchor_of(sim.clock))
        target = TestCallsTarget(
            sim.base_url, "sk_test_e2e", metrics, poll_interval_s=poll_s, clock=sim.clock, transport=sim.transport
        )
        try:
            await target.check()
            result = await Engine(profile, target, metrics=metrics, clock=sim.clock).run()
        finally:
            await target.aclose()
        return result, sim.model.truth()


def run_against_simulator(poll_s: float) -> tuple[EngineResult, list[TruthRecord]]:
    config = SimConfig.from_text(slots=2, failure_rate=0.2, seed=11, call_duration="lognormal(45,0.4)")
    profile = parse_profile(PROFILE, "e2e.toml", Path())
    return run(drive, profile, config, poll_s)


@pytest.fixture(scope="module")
def outcome() -> tuple[EngineResult, list[TruthRecord]]:
    return run_against_simulator(POLL_S)


def queue_to_completion_pairs(result: EngineResult, truth: list[TruthRecord]) -> tuple[list[float], list[float]]:
    """Per run: stressor's queue-to-completion and the truth's (the simulator's end minus the run's due time)."""
    anchor = result.metrics.anchor
    by_id = {run.id: run for run in truth}
    measured, real = [], []
    for record in result.records:
        completed = by_id[record.run_id].completed
        assert record.detected_ns is not None and completed is not None, record.run_id
        real.append(completed - anchor.to_wall_s(record.due_ns))
        measured.append((record.detected_ns - record.due_ns) / NS_PER_S)
    return measured, real


def accuracy_misses(result: EngineResult, truth: list[TruthRecord], poll_s: float) -> list[str]:
    """Every way stressor's queue-to-completion strays from the truth by more than one poll interval + slack:
    per run, at each percentile, and at the max; never before the truth (beyond clock jitter)."""
    measured, real = queue_to_completion_pairs(result, truth)
    low, high = -CLOCK_JITTER_S, poll_s + SLACK_S
    misses = [
        f"run {i}: error {m - r:+.4f}s"
        for i, (m, r) in enumerate(zip(measured, real, strict=True))
        if not low <= m - r <= high
    ]
    # the truth goes into a histogram like stressor's, so both percentiles have one definition and resolution
    truth_recorder = LatencyRecorder()
    for value in real:
        truth_recorder.record_s(value)
    ours = result.metrics.recorders[Measure.QUEUE_TO_COMPLETION].summary()
    theirs = truth_recorder.summary()
    for p in PERCENTILES:
        error = ours.percentiles_s[p] - theirs.percentiles_s[p]
        if not low <= error <= high:
            misses.append(f"p{p:g}: error {error:+.4f}s")
    if not low <= ours.max_s - theirs.max_s <= high:
        misses.append(f"max: error {ours.max_s - theirs.max_s:+.4f}s")
    return misses


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
    # the counters, not only the records, agree with the server: nothing counted twice
    completed = sum(run.status == "completed" for run in truth)
    failed = sum(run.status == "failed" for run in truth)
    assert runs.outcomes[Outcome.COMPLETED] == completed
    assert runs.outcomes[Outcome.FAILED] == failed
    assert completed + failed == 180
    assert runs.failure_rate == failed / 180


def test_configured_failure_rate_shows(outcome: tuple[EngineResult, list[TruthRecord]]) -> None:
    result, _ = outcome
    assert result.metrics.failure_rate is not None
    assert 0.12 <= result.metrics.failure_rate <= 0.28  # 20 % configured, 180 runs: about +-3 sd


def test_queue_to_completion_agrees_with_ground_truth(outcome: tuple[EngineResult, list[TruthRecord]]) -> None:
    result, truth = outcome
    assert accuracy_misses(result, truth, POLL_S) == []
    measured, real = queue_to_completion_pairs(result, truth)
    # the interval really dominates: detection delays spread over most of it, so the bound is not loose
    assert max(m - r for m, r in zip(measured, real, strict=True)) > POLL_S / 2


def test_a_target_polling_twice_too_slowly_fails_these_bounds() -> None:
    # Guard: the same run with the target polling every 2 x POLL_S, judged against POLL_S, must miss.
    result, truth = run_against_simulator(2 * POLL_S)
    misses = accuracy_misses(result, truth, POLL_S)
    # Run by run, many ends are seen later than the bound allows. (The percentiles and the max compare two
    # distributions, not runs: whether they miss too depends on which runs were caught late.)
    assert sum(miss.startswith("run") for miss in misses) >= 10, misses


def test_no_end_is_seen_before_the_server_showed_it_and_no_submit_is_quicker_than_the_server(
    outcome: tuple[EngineResult, list[TruthRecord]],
) -> None:
    result, truth = outcome
    anchor = result.metrics.anchor
    by_id = {run.id: run for run in truth}
    for record in result.records:
        real = by_id[record.run_id]
        assert record.detected_ns is not None and real.completed is not None
        assert real.shown_ended is not None and real.shown_ended >= real.completed  # polling: a list page showed it
        assert anchor.to_wall_s(record.detected_ns) >= real.shown_ended - CLOCK_JITTER_S
        assert real.submit_arrived is not None and real.submit_answered is not None
        assert real.submit_arrived <= real.created <= real.submit_answered
    # each batch's submit round trip is at least the server's time on its create request
    served = sorted({(run.batch_id, run.submit_answered - run.submit_arrived) for run in truth})  # type: ignore[operator]
    ours = result.metrics.recorders[Measure.SUBMIT_RTT].summary()
    assert ours.count == len(served) == 45
    assert ours.max_s >= max(seconds for _, seconds in served) - CLOCK_JITTER_S


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
