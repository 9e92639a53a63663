"""Live progress while a run goes: a plain line for logs, a small table for a terminal.

Both render one ``Progress`` snapshot, taken by the engine; nothing here reads a clock or the engine itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table

from stressor.metrics import Measure, Metrics, Outcome
from stressor.plan import stage_at
from stressor.profile import Profile
from stressor.units import format_duration


@dataclass(frozen=True, slots=True)
class Progress:
    """The state of a run at one moment, as the client knows it."""

    elapsed_s: float
    planned_s: float
    stage: str
    stage_left_s: float
    planned: int
    submitted: int
    in_flight: int
    completed: int
    failed: int
    errored: int
    rejected: int
    not_started: int
    offered_per_s: float
    achieved_per_s: float
    q2c_p50_s: float | None
    q2c_p99_s: float | None
    throttled_s: float


def progress_of(profile: Profile, metrics: Metrics, elapsed_s: float, in_flight: int, throttled_s: float) -> Progress:
    """The snapshot of a run ``elapsed_s`` into it (percentiles are read from the histogram: about once a
    second, not more)."""
    window = stage_at(profile, elapsed_s)
    outcomes = metrics.outcomes
    q2c = metrics.recorders[Measure.QUEUE_TO_COMPLETION].summary().percentiles_s
    span = max(elapsed_s, 1e-9)
    return Progress(
        elapsed_s=elapsed_s,
        planned_s=profile.duration_s,
        stage=window.stage.name if window else "",
        stage_left_s=window.end_s - elapsed_s if window else 0.0,
        planned=metrics.planned_runs,
        submitted=metrics.submitted_runs,
        in_flight=in_flight,
        completed=outcomes[Outcome.COMPLETED],
        failed=outcomes[Outcome.FAILED],
        errored=outcomes[Outcome.ERRORED],
        rejected=outcomes[Outcome.REJECTED],
        not_started=sum(metrics.not_started.values()),
        offered_per_s=metrics.planned_runs / span,
        achieved_per_s=metrics.submitted_runs / span,
        q2c_p50_s=q2c.get(50.0),
        q2c_p99_s=q2c.get(99.0),
        throttled_s=throttled_s,
    )


def _latency(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def progress_line(p: Progress) -> str:
    """One line for CI logs and other non-terminals."""
    where = f"{p.stage}, {format_duration(p.stage_left_s)} left" if p.stage_left_s > 0 else "grace"
    return (
        f"[{p.elapsed_s:7.1f}s/{p.planned_s:.0f}s] {where} | submitted {p.submitted}/{p.planned} "
        f"in flight {p.in_flight} done {p.completed} failed {p.failed} errored {p.errored} "
        f"rejected {p.rejected} not started {p.not_started} | {p.offered_per_s:.3g}/s offered "
        f"{p.achieved_per_s:.3g}/s achieved | q2c p50 {_latency(p.q2c_p50_s)} p99 {_latency(p.q2c_p99_s)}"
        + (f" | throttled {format_duration(p.throttled_s)}" if p.throttled_s else "")
    )


def progress_table(p: Progress) -> Table:
    """The same figures as a small table, for a live terminal display."""
    stage = f"{p.stage} ({format_duration(p.stage_left_s)} left)" if p.stage_left_s > 0 else "grace period"
    table = Table(title=f"stressor  {p.elapsed_s:.1f}s of {p.planned_s:.0f}s  {stage}", show_header=False)
    table.add_column(justify="right", style="bold")
    table.add_column()
    table.add_row("runs", f"submitted {p.submitted} of {p.planned}, in flight {p.in_flight}")
    table.add_row(
        "ended",
        f"[green]completed {p.completed}[/]  [red]failed {p.failed}  errored {p.errored}[/]  "
        f"rejected {p.rejected}  not started {p.not_started}",
    )
    table.add_row("rate", f"offered {p.offered_per_s:.3g}/s, achieved {p.achieved_per_s:.3g}/s")
    table.add_row("queue-to-completion", f"p50 {_latency(p.q2c_p50_s)}  p99 {_latency(p.q2c_p99_s)}")
    if p.throttled_s:
        table.add_row("throttled", format_duration(p.throttled_s))
    return table
