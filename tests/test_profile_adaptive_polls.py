"""Adaptive polling is on by default: with long calls a profile that does not set ``poll_interval_max`` polls
far less than one that fixes the interval, and still sees every end within the bound (against the simulator's
ground truth)."""

from __future__ import annotations

import pytest
from sessions import profile_of, run_session

from stressor.metrics import Outcome
from stressor.plan import estimate
from stressor.profile import Profile
from stressor.session import SessionResult
from stressor.timestamps import NS_PER_S

pytestmark = pytest.mark.e2e

POLL_S = 0.02
BOUND_S = 0.2  # the default poll_interval_max for a 20 ms poll_interval: ten intervals
SLACK_S = 0.25  # a shared 2-core machine: a poll may run late by this much
RUNS = 6
# 45 API seconds at time scale 0.05: calls of 2.25 s. Fixed 20 ms polls: ~113 per batch. Growing ones: ten
# 20 ms polls, then a tenth of the age up to 200 ms: ~10 + 10 ln(2.27 / 0.2) = ~34.
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


def _polls_per_run(outcome: SessionResult) -> float:
    metrics = outcome.engine.metrics
    assert metrics.outcomes[Outcome.COMPLETED] == RUNS
    polls = sum(count for label, count in metrics.requests.items() if label.startswith("poll"))
    assert polls, dict(metrics.requests)
    return polls / RUNS


def test_polls_grow_by_default_and_ends_are_still_seen_within_the_bound() -> None:
    adaptive = _run({"poll_interval": f"{POLL_S}s"})
    assert adaptive.engine.metrics.outcomes[Outcome.COMPLETED] == RUNS
    fixed = _run({"poll_interval": f"{POLL_S}s", "poll_interval_max": f"{POLL_S}s"})
    # ~34 against ~113: a wrong default (fixed polls) fails this by far, a slow machine that skips polls only
    # lowers both.
    assert _polls_per_run(adaptive) < 0.5 * _polls_per_run(fixed)
    assert _polls_per_run(adaptive) > 15  # it still polls: ten short intervals, then growing ones
    # The plan counts the same polls: per batch of one run, the POST, the polls, one list read.
    planned, _ = estimate(adaptive_profile := _profile({"poll_interval": f"{POLL_S}s"}))
    assert adaptive_profile.target.poll_interval_max_s == BOUND_S
    planned_polls = planned[0].requests / planned[0].batches - 2
    assert 0.6 * planned_polls <= _polls_per_run(adaptive) <= 1.2 * planned_polls

    truth = {record.id: record for record in adaptive.truth or ()}
    anchor = adaptive.engine.metrics.anchor
    for record in adaptive.engine.records:
        assert record.detected_ns is not None
        completed = truth[record.run_id].completed
        assert completed is not None
        seen_after_s = (record.detected_ns - record.due_ns) / NS_PER_S - (completed - anchor.to_wall_s(record.due_ns))
        assert -0.002 <= seen_after_s <= BOUND_S + SLACK_S, record.run_id
