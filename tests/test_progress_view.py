"""Progress a person can read: runs planned by the whole plan vs due so far vs submitted vs ended, a bar per stage,
when the run ends (through the grace period), and a terminal view that never takes more than 80 columns.

Snapshots are crafted (a Metrics fed by hand, read at chosen times), so every figure is known exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from stressor.governor import Governor
from stressor.metrics import Measure, Metrics, Outcome
from stressor.profile import Limits, Profile, parse_profile
from stressor.progress import Progress, ProgressWindow, eta_of, progress_of
from stressor.report.progress import eta_text, progress_line, progress_lines, progress_view
from stressor.timestamps import ClockAnchor


def profile_of(stages: list[dict[str, Any]], grace: str = "30s", runs: int = 2) -> Profile:
    return parse_profile({"stages": stages, "grace": grace, "batch": {"runs": runs}}, "p.toml", Path())


TWO_STAGES = [
    {"name": "warm", "duration": "10s", "rate": "2/s"},
    {"name": "push", "duration": "10s", "rate": "20/s"},
]


class Run:
    """A run fed by hand."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.metrics = Metrics(ClockAnchor.now())
        self.window = ProgressWindow(window_s=5.0)
        self.governor = Governor(Limits())

    def feed(self, *, due: int = 0, submitted: int = 0, completed: int = 0, failed: int = 0, errored: int = 0) -> None:
        m = self.metrics
        m.planned_runs += due
        m.submitted_runs += submitted
        m.outcomes[Outcome.COMPLETED] += completed
        m.outcomes[Outcome.FAILED] += failed
        m.outcomes[Outcome.ERRORED] += errored
        for _ in range(min(completed + failed, 1000)):  # enough for percentiles
            m.recorders[Measure.QUEUE_TO_COMPLETION].record_s(1.5)

    def read(self, elapsed_s: float, in_flight: int = 0) -> Progress:
        raw = progress_of(self.profile, self.metrics, elapsed_s, in_flight, 0.0)
        return self.window.update(raw, self.governor)


def test_planned_is_the_whole_plan_while_due_submitted_and_ended_grow() -> None:
    run = Run(profile_of(TWO_STAGES))  # 2/s x 10 s + 20/s x 10 s = 220 batches of 2 runs
    run.feed(due=24, submitted=22, completed=15, failed=2, errored=2)
    snapshot = run.read(12.0, in_flight=3)
    assert (snapshot.planned, snapshot.due, snapshot.submitted, snapshot.ended) == (440, 24, 22, 19)
    assert not snapshot.planned_more
    line = progress_line(snapshot)
    assert "runs planned 440 due 24 submitted 22 ended 19 in flight 3" in line
    view = progress_lines(snapshot)
    assert any(row.startswith("runs       planned 440  due 24  submitted 22  ended 19  in flight 3") for row in view)
    # What the line used to say, "submitted 22/24", read as nearly finished 12 s into a 20 s plan.
    assert "submitted 22/24" not in line


def test_a_closed_stage_makes_the_plan_open_ended() -> None:
    stages = [*TWO_STAGES, {"name": "hold", "duration": "10s", "in_flight": 5}]
    run = Run(profile_of(stages))
    snapshot = run.read(1.0)
    assert snapshot.planned == 440 and snapshot.planned_more
    assert "planned 440+" in progress_line(snapshot)


def test_an_early_stop_keeps_the_plan_and_counts_only_what_became_due() -> None:
    run = Run(profile_of(TWO_STAGES))
    run.feed(due=30, submitted=30, completed=25)
    run.metrics.planned_runs += 410  # the rest of the plan, never due, counted when the stop came
    run.metrics.never_due_runs = 410
    run.metrics.plan_ran_s = 12.5
    snapshot = run.read(14.0, in_flight=5)
    assert (snapshot.planned, snapshot.due) == (440, 30)
    assert snapshot.in_grace and snapshot.offered_per_s == 0.0
    assert snapshot.grace_left_s == pytest.approx(28.5)
    view = "\n".join(progress_lines(snapshot))
    assert "grace period (stopped early at 12s)" in view
    assert "stopped at 2.5s of 10s" in view  # "push" was cut short


def test_the_eta_counts_the_plan_then_up_to_the_grace_period() -> None:
    run = Run(profile_of(TWO_STAGES, grace="30s"))
    during = run.read(12.0, in_flight=4)
    eta = eta_of(during)
    assert (eta.plan_left_s, eta.grace_left_s, eta.drain_s) == (pytest.approx(8.0), 30.0, None)
    assert eta.at_most_s == pytest.approx(38.0)
    assert eta_text(eta) == "8.0s + up to 30s grace"
    assert "ends in 8.0s + up to 30s grace" in progress_line(during)


def test_in_the_grace_period_the_eta_is_the_runs_in_flight_at_the_rate_runs_end() -> None:
    run = Run(profile_of(TWO_STAGES, grace="30s"))
    run.read(20.0, in_flight=40)
    run.feed(completed=12)  # 12 runs ended in 4 s: 3 a second
    snapshot = run.read(24.0, in_flight=28)
    eta = eta_of(snapshot)
    assert snapshot.in_grace and snapshot.grace_left_s == pytest.approx(26.0)
    assert eta.plan_left_s == 0.0 and eta.drain_s == pytest.approx(28 / 3)
    assert eta_text(eta) == "about 9.3s (at most 26s)"
    view = "\n".join(progress_lines(snapshot))
    assert "ends about 9.3s (at most 26s)" in view
    assert "28 in flight, 26s left at most" in view


def test_in_the_grace_period_with_no_run_ending_the_eta_is_the_grace_left() -> None:
    run = Run(profile_of(TWO_STAGES, grace="30s"))
    run.read(40.0, in_flight=3)
    eta = eta_of(run.read(45.0, in_flight=3))
    assert eta.drain_s is None and eta_text(eta) == "at most 5.0s"
    assert eta_text(eta_of(run.read(46.0, in_flight=0))) == "now (no run in flight)"


def test_each_stage_has_a_bar_with_elapsed_and_remaining() -> None:
    run = Run(profile_of(TWO_STAGES))
    lines = progress_lines(run.read(15.0))
    assert lines[0].startswith("15s of 20s, stage 2 of 2  ends in 5.0s")
    warm, push, grace = lines[1:4]
    assert warm.startswith("warm  ") and warm.endswith("done, 10s") and "░" not in warm
    assert push.startswith("push  ") and push.endswith("5.0s of 10s, 5.0s left")
    assert push.count("█") == push.count("░")  # half way
    assert grace.startswith("grace ") and grace.endswith("up to 30s") and "█" not in grace


def test_a_long_plan_shows_the_stages_around_the_current_one() -> None:
    stages = [{"name": f"step-{i}", "duration": "10s", "rate": "1/s"} for i in range(1, 21)]
    run = Run(profile_of(stages))
    lines = progress_lines(run.read(95.0))  # in step-10
    assert "… 8 earlier stages" in lines
    assert any(line.startswith("step-10 ") and "5.0s left" in line for line in lines)
    assert "… 6 more stages, 1m00s" in lines  # step-15 .. step-20
    assert [line.split()[0] for line in lines if line.startswith("step-")] == [f"step-{i}" for i in range(9, 15)]


LONG_NAME = "a-stage-with-a-name-far-too-long-for-any-column"


def busy_snapshot() -> Progress:
    """Everything at once: long names, big counts, failures, throttling, refusals."""
    stages = [{"name": LONG_NAME, "duration": "2h", "rate": "300/s"}, {"name": "x", "duration": "30s", "rate": "1/s"}]
    run = Run(profile_of(stages, runs=10))
    run.read(3000.0, in_flight=123456)
    run.feed(due=9_876_543, submitted=9_876_000, completed=9_000_000, failed=123_456, errored=7_890)
    run.metrics.requests["create http_429"] += 4321
    run.governor.throttle_wait_s, run.governor.server_pause_s = 1.25, 2.5
    return run.read(3004.0, in_flight=123456)


@pytest.mark.parametrize("width", [80, 60, 40])
def test_no_line_of_the_view_is_wider_than_the_terminal(width: int) -> None:
    snapshot = busy_snapshot()
    lines = progress_lines(snapshot, width)
    assert all(cell_len(line) <= width for line in lines), [line for line in lines if cell_len(line) > width]
    # The styled view a terminal gets is drawn without wrapping: one row per line.
    console = Console(width=width, record=True, force_terminal=True, color_system="truecolor")
    console.print(progress_view(snapshot, width))
    assert console.export_text().splitlines() == lines
    joined = "\n".join(lines)
    assert "throttled" in joined and "4321 refused (429/503)" in joined
    assert "failed 123456" in joined


def test_at_80_columns_nothing_is_cut() -> None:
    lines = progress_lines(busy_snapshot())
    assert max(cell_len(line) for line in lines) <= 80
    cut = [line for line in lines if "…" in line]
    assert cut == [next(line for line in lines if line.startswith("a-stage-with-"))]  # only the long name
