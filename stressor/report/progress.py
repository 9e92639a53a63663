"""Live progress, drawn: a plain line for logs, a small table for a terminal, from one ``Progress`` snapshot."""

from __future__ import annotations

from rich.table import Table

from stressor.progress import Progress
from stressor.units import format_duration


def _latency(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.3g}%"


def _throttling(p: Progress) -> str:
    """Throttling over the window, or "" when there was none."""
    parts = []
    if p.held_s:
        what = "held by rate limits" if p.paused_s is not None else "held"
        parts.append(f"{what} {format_duration(p.held_s)} of {format_duration(p.window_s)}")
    if p.paused_s:
        parts.append(f"server pause {format_duration(p.paused_s)} of {format_duration(p.window_s)}")
    if p.refused:
        parts.append(f"{p.refused} refused (429/503)")
    return ", ".join(parts)


def _window(p: Progress) -> str:
    return "so far" if p.window_s >= p.elapsed_s else f"last {format_duration(p.window_s)}"


def progress_line(p: Progress) -> str:
    """One line for CI logs and other non-terminals."""
    where = f"{p.stage}, {format_duration(p.stage_left_s)} left" if not p.in_grace else "grace"
    throttling = _throttling(p)
    return (
        f"[{p.elapsed_s:7.1f}s/{p.planned_s:.0f}s] {where} | submitted {p.submitted}/{p.planned} "
        f"in flight {p.in_flight} done {p.completed} failed {p.failed} errored {p.errored} "
        f"rejected {p.rejected} not started {p.not_started} | {_window(p)}: {p.offered_per_s:.3g}/s offered "
        f"{p.achieved_per_s:.3g}/s achieved, failures {_rate(p.failure_rate)}, "
        f"q2c p50 {_latency(p.q2c_p50_s)} p99 {_latency(p.q2c_p99_s)}" + (f" | {throttling}" if throttling else "")
    )


def progress_table(p: Progress) -> Table:
    """The same figures as a small table, for a live terminal display."""
    stage = f"{p.stage} ({format_duration(p.stage_left_s)} left)" if not p.in_grace else "grace period"
    table = Table(title=f"stressor  {p.elapsed_s:.1f}s of {p.planned_s:.0f}s  {stage}", show_header=False)
    table.add_column(justify="right", style="bold")
    table.add_column()
    table.add_row("runs", f"submitted {p.submitted} of {p.planned}, in flight {p.in_flight}")
    table.add_row(
        "ended",
        f"[green]completed {p.completed}[/]  [red]failed {p.failed}  errored {p.errored}[/]  "
        f"rejected {p.rejected}  not started {p.not_started}",
    )
    table.add_row(
        f"rate ({_window(p)})",
        f"offered {p.offered_per_s:.3g}/s, achieved {p.achieved_per_s:.3g}/s, failures {_rate(p.failure_rate)}",
    )
    table.add_row(f"queue-to-completion ({_window(p)})", f"p50 {_latency(p.q2c_p50_s)}  p99 {_latency(p.q2c_p99_s)}")
    throttling = _throttling(p)
    if throttling:
        table.add_row("throttled", throttling)
    return table
