"""Adaptive polling is on by default: with long calls a profile that does not set ``poll_interval_max`` polls
less than one that fixes the interval, and still sees every end within the bound (against the simulator's
ground truth, in memory on virtual time)."""

from __future__ import annotations

from sessions import profile_of, run_session

from stressor.estimate import estimate
from stressor.metrics import Outcome
from stressor.profile import Profile
from stressor.session import SessionResult
from stressor.timestamps import NS_PER_S

POLL_S = 0.02
BOUND_S = 0.2  # the default poll_interval_max for a 20 ms poll_interval: ten intervals
SLACK_S = 0.25  # a shared 2-core machine: a poll may run late by this much
RUNS = 6
# 45 API seconds at time scale 0.05: calls of 2.25 s. The six runs sit at the top of the run list, so one scan
# of it serves all of them. Fixed 20 ms polls: a scan every 20 ms while runs are open, ~165 (~27 per run).
# Growing ones: every 20 ms while the youngest run is under 0.2 s old, then on the grid of the largest
# 20 ms * 2^k within a tenth of its age: ~60 + 24..48, ~15 per run.
SIMULATOR = {"slots": 50, "time_scale": 0.05, "call_duration": "fixed(45)", "seed": 3}


def _profile(target: dict[str, str]) -> Profile:
    return profile_of(
        {
            "grace": "10s",
            "mean_call_duration": "2.25s",
            "target": target,
            "stages": [{"duration": "1s", "rate": f"{RUNS}/s"}],
        }
    )


def _run(target: dict[str, str]) -> SessionResult:
    return run_session(_profile(target), SIMULATOR)


def _planned_polls_per_run(target: dict[str, str]) -> float:
    planned, _ = estimate(_profile(target))
    return planned[0].requests / planned[0].batches - 1  # batches of one run, less the POST


def _polls_per_run(outcome: SessionResult) -> float:
    metrics = outcome.engine.metrics
    assert metrics.outcomes[Outcome.COMPLETED] == RUNS
    # batch polls and list reads: what following the runs cost
    polls = sum(count for label, count in metrics.requests.items() if label.startswith(("poll", "list_runs")))
    assert polls, dict(metrics.requests)
    return polls / RUNS


def test_polls_grow_by_default_and_ends_are_still_seen_within_the_bound() -> None:
    adaptive = _run({"poll_interval": f"{POLL_S}s"})
    assert adaptive.engine.metrics.outcomes[Outcome.COMPLETED] == RUNS
    fixed = _run({"poll_interval": f"{POLL_S}s", "poll_interval_max": f"{POLL_S}s"})
    # ~15 against ~27: a wrong default (fixed polls) fails this, a slow machine that skips polls only
    # lowers both.
    assert _polls_per_run(adaptive) < 0.75 * _polls_per_run(fixed)
    assert _polls_per_run(adaptive) > 8  # it still polls: short intervals, then growing ones
    # The plan counts a scan every interval while runs are open: a bound that fixed polls come near, and that
    # growing polls stay under. Per batch of one run, less the POST.
    fixed_plan = _planned_polls_per_run({"poll_interval": f"{POLL_S}s", "poll_interval_max": f"{POLL_S}s"})
    assert 0.6 * fixed_plan <= _polls_per_run(fixed) <= 1.2 * fixed_plan
    assert _polls_per_run(adaptive) <= 1.2 * _planned_polls_per_run({"poll_interval": f"{POLL_S}s"})
    assert _profile({"poll_interval": f"{POLL_S}s"}).target.poll_interval_max_s == BOUND_S

    truth = {record.id: record for record in adaptive.truth or ()}
    anchor = adaptive.engine.metrics.anchor
    for record in adaptive.engine.records:
        assert record.detected_ns is not None
        completed = truth[record.run_id].completed
        assert completed is not None
        seen_after_s = (record.detected_ns - record.due_ns) / NS_PER_S - (completed - anchor.to_wall_s(record.due_ns))
        assert -0.002 <= seen_after_s <= BOUND_S + SLACK_S, record.run_id
