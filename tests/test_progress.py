"""Live progress: the current figures come from the last few seconds, not from the whole run.

Snapshots are crafted: a Metrics fed by hand between calls, read at chosen elapsed times, so every expected
figure is known exactly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stressor.governor import Governor
from stressor.metrics import Measure, Metrics, Outcome
from stressor.profile import Limits, Profile, parse_profile
from stressor.progress import Progress, ProgressWindow, progress_of
from stressor.report.progress import progress_line, progress_lines
from stressor.timestamps import ClockAnchor


def profile() -> Profile:
    # 10 s at 2 batches/s, then 10 s at 20 batches/s, then a grace period.
    stages = [
        {"name": "warm", "duration": "10s", "rate": "2/s"},
        {"name": "push", "duration": "10s", "rate": "20/s"},
    ]
    return parse_profile({"stages": stages, "grace": "30s"}, "p.toml", Path())


class Run:
    """A run fed by hand: runs planned, created and ended, and requests sent, as a test says."""

    def __init__(self) -> None:
        self.profile = profile()
        self.metrics = Metrics(ClockAnchor.now())
        self.governor = Governor(Limits())
        self.window = ProgressWindow(window_s=5.0)

    def feed(
        self,
        *,
        planned: int = 0,
        created: int = 0,
        completed: int = 0,
        failed: int = 0,
        errored: int = 0,
        q2c_s: float = 1.0,
        requests: int = 0,
        refused: int = 0,
    ) -> None:
        m = self.metrics
        m.planned_runs += planned
        m.submitted_runs += created
        for outcome, count in ((Outcome.COMPLETED, completed), (Outcome.FAILED, failed)):
            m.outcomes[outcome] += count
            for _ in range(count):
                m.recorders[Measure.QUEUE_TO_COMPLETION].record_s(q2c_s)
        m.outcomes[Outcome.ERRORED] += errored
        m.requests["create 2xx"] += requests - refused
        m.requests["create http_429"] += refused

    def read(self, elapsed_s: float, in_flight: int = 0) -> Progress:
        raw = progress_of(self.profile, self.metrics, elapsed_s, in_flight, self.governor.throttle_wait_s)
        return self.window.update(raw, self.governor)


def test_rates_are_those_of_the_last_seconds_not_the_average_since_the_start() -> None:
    run = Run()
    for second in range(1, 20):  # 2 runs/s in "warm", 20 runs/s in "push"; the server creates half of them
        rate = 2 if second <= 10 else 20
        run.feed(planned=rate, created=rate // 2)
        snapshot = run.read(float(second))
    assert snapshot.stage == "push" and snapshot.window_s == pytest.approx(5.0)
    assert snapshot.offered_per_s == pytest.approx(20.0)
    assert snapshot.achieved_per_s == pytest.approx(10.0)
    # The whole-run average (what progress used to show) would be 10.5/s offered: far from both stages' rates.
    assert run.metrics.planned_runs / 19 == pytest.approx(10.5, abs=0.05)


def test_a_new_stage_shows_its_own_rate_at_once() -> None:
    run = Run()
    for second in range(1, 11):
        run.feed(planned=2)
        run.read(float(second))
    run.feed(planned=20)
    snapshot = run.read(11.0)
    # The window stops at the stage's start (10 s): one second of "push", not four of "warm" mixed in.
    assert snapshot.stage == "push" and snapshot.window_s == pytest.approx(1.0)
    assert snapshot.offered_per_s == pytest.approx(20.0)


def test_the_grace_period_offers_nothing() -> None:
    run = Run()
    for second in range(1, 21):
        run.feed(planned=20, created=20)
        run.read(float(second))
    run.feed(completed=40)
    snapshot = run.read(22.0)
    assert snapshot.in_grace and snapshot.offered_per_s == 0.0
    assert snapshot.achieved_per_s == 0.0 and snapshot.window_s == pytest.approx(2.0)
    line = progress_line(snapshot)
    assert "grace" in line and "0/s offered" in line


def test_percentiles_and_failures_are_those_of_runs_that_ended_in_the_window() -> None:
    run = Run()
    for second in range(1, 11):
        run.feed(completed=100, q2c_s=0.5)  # a long calm start ...
        run.read(float(second))
    for second in range(11, 16):
        run.feed(completed=8, failed=1, errored=1, q2c_s=9.0)  # ... then five slow seconds
        snapshot = run.read(float(second))
    assert snapshot.q2c_p50_s == pytest.approx(9.0, rel=0.002)
    assert snapshot.q2c_p99_s == pytest.approx(9.0, rel=0.002)
    assert snapshot.failure_rate == pytest.approx(0.2)  # 2 of 10 settled runs a second, errored included
    # Over the whole run the slow runs are 4 % of 1045: cumulative figures would still say 0.5 s.
    cumulative = run.metrics.recorders[Measure.QUEUE_TO_COMPLETION].summary().percentiles_s
    assert cumulative[50.0] == pytest.approx(0.5, rel=0.002)
    assert "p50 9" in progress_line(snapshot) and "failures 20%" in progress_line(snapshot)


def test_a_window_without_ended_runs_has_no_percentiles() -> None:
    run = Run()
    run.feed(completed=5)
    run.read(6.0)
    snapshot = run.read(7.0)
    assert snapshot.q2c_p50_s is None and snapshot.failure_rate is None
    assert "p50 - p99 -" in progress_line(snapshot)


def test_throttling_is_wall_time_held_in_the_window() -> None:
    run = Run()
    run.governor.throttle_wait_s, run.governor.server_pause_s = 30.0, 4.0  # earlier in the run: not current
    run.read(6.0)
    # Over the next 2 s: requests were held 0.8 s by rate limits and 1.5 s by a server pause (both wall time,
    # as the governor counts them), and 4 of 100 requests were refused.
    run.feed(requests=100, refused=4)
    run.governor.throttle_wait_s += 0.8
    run.governor.server_pause_s += 1.5
    snapshot = run.read(8.0)
    assert snapshot.window_s == pytest.approx(2.0)
    assert snapshot.held_s == pytest.approx(0.8) and snapshot.paused_s == pytest.approx(1.5)
    assert snapshot.refused == 4
    line = progress_line(snapshot)
    assert "held by rate limits 800ms of 2s" in line and "server pause 1.5s of 2s" in line and "4 refused" in line
    assert "30" not in line.split("|")[-1]  # the run's earlier throttling is not current
    # Never more than the window, whatever a sum over workers says.
    run.governor.throttle_wait_s += 7.0
    assert run.read(9.0).held_s == pytest.approx(3.0)
    # Later windows without waits show no throttling at all.
    for second in range(10, 16):
        snapshot = run.read(float(second))
    assert snapshot.held_s == 0.0 and snapshot.paused_s == 0.0 and snapshot.refused == 0
    assert not any(line.startswith("throttled") for line in progress_lines(snapshot))
    assert "held" not in progress_line(snapshot) and "pause" not in progress_line(snapshot)


def test_the_terminal_view_has_the_same_current_figures() -> None:
    run = Run()
    run.read(6.0)
    run.feed(planned=4, created=4, completed=3, q2c_s=2.0)
    snapshot = run.read(8.0)
    view = "\n".join(progress_lines(snapshot))
    assert "last 2.0s  offered 2/s  achieved 2/s" in view
    assert "q2c p50 2" in view


def test_a_lone_snapshot_measures_from_the_start() -> None:
    run = Run()
    run.feed(planned=8, created=8)
    snapshot = progress_of(run.profile, run.metrics, 4.0, 3, 0.0)
    assert snapshot.window_s == 4.0 and snapshot.offered_per_s == pytest.approx(2.0)
    assert snapshot.in_flight == 3 and "in flight 3" in progress_line(snapshot)


def test_a_rate_is_never_taken_over_less_than_a_second() -> None:
    run = Run()
    run.feed(planned=1)  # the batch due at 0 s
    first = run.read(0.05)
    assert first.offered_per_s == pytest.approx(1.0)  # 1 run so far, not 1 run in 50 ms = 20/s
    assert "so far" in progress_line(first)
    for half in range(1, 21):  # "warm" at 2/s, read every 0.5 s
        run.feed(planned=1)
        run.read(half / 2)
    run.feed(planned=2)  # "push" starts at 10 s: its first batches
    snapshot = run.read(10.2)
    # 200 ms into "push", the window reaches back past 9.2 s, to the snapshot at 9 s: not 2 runs in 0.2 s (10/s).
    assert snapshot.stage == "push" and snapshot.window_s == pytest.approx(1.2)
    assert snapshot.offered_per_s == pytest.approx(4 / 1.2)  # runs due at 9.5 s, 10 s, and the 2 of "push"
