"""Live progress, drawn from one ``Progress`` snapshot: a plain line for logs, and for a terminal a view that fits
its width (80 columns at most): a bar per stage, the runs planned / due / submitted / ended, the current rates,
and when the run ends. The layout is docs/reports.md#live-progress."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text

from stressor.progress import Eta, Progress, StageSpan, eta_of
from stressor.units import format_duration

WIDTH = 80  # the most columns the terminal view takes, however wide the terminal
MAX_STAGE_ROWS = 6  # a longer plan shows the stages around the current one, and says how many it left out
_LABEL = 11  # the label column of the figures
_TAIL = 29  # what a stage's bar is followed by: "50m04s of 2h00m, 1h09m left"
_BAR_MIN, _BAR_MAX = 5, 40

Segment = tuple[str, str]  # text, and its rich style ("" for none)
Line = list[Segment]


def _latency(value: float | None) -> str:
    return "-" if value is None else format_duration(value)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.3g}%"


def short(seconds: float) -> str:
    """A duration in at most six characters: 4.3s, 43s, 12m05s, 2h05m."""
    if seconds < 9.95:
        return f"{max(seconds, 0.0):.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def eta_text(eta: Eta) -> str:
    """When the run ends, in words: "12s + up to 30s grace", "about 4.0s (at most 22s)", "at most 22s"."""
    if eta.plan_left_s > 0:
        grace = f" + up to {short(eta.grace_left_s)} grace" if eta.grace_left_s > 0 else ""
        return f"{short(eta.plan_left_s)}{grace}"
    if eta.drain_s == 0:
        return "now (no run in flight)"
    if eta.drain_s is None:
        return f"at most {short(eta.grace_left_s)}"
    return f"about {short(eta.drain_s)} (at most {short(eta.grace_left_s)})"


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


def _per_s(value: float) -> str:
    """A rate that stays short: 2.47/s, 247/s, 24700/s (never 2.47e+04/s)."""
    return f"{value:.3g}/s" if value < 1000 else f"{value:.0f}/s"


def _planned(p: Progress) -> str:
    return f"{p.planned}+" if p.planned_more else str(p.planned)


def progress_line(p: Progress) -> str:
    """One line for CI logs and other non-terminals."""
    eta = eta_text(eta_of(p))
    if p.in_grace:
        where = f"grace, {p.in_flight} in flight, ends {eta}"
    else:
        where = f"{p.stage}, {format_duration(p.stage_left_s)} left, ends in {eta}"
    throttling = _throttling(p)
    return (
        f"[{p.elapsed_s:7.1f}s/{p.planned_s:.0f}s] {where} | runs planned {_planned(p)} due {p.due} "
        f"submitted {p.submitted} ended {p.ended} in flight {p.in_flight} (done {p.completed} failed {p.failed} "
        f"errored {p.errored} rejected {p.rejected}) not started {p.not_started} | {_window(p)}: "
        f"{_per_s(p.offered_per_s)} offered {_per_s(p.achieved_per_s)} achieved, failures {_rate(p.failure_rate)}, "
        f"q2c p50 {_latency(p.q2c_p50_s)} p99 {_latency(p.q2c_p99_s)}" + (f" | {throttling}" if throttling else "")
    )


# ------------------------------------------------------------------------------------------------ the view


def _fit(line: Line, width: int) -> Line:
    """The line cut to ``width`` cells, an ellipsis where it was cut: a terminal never wraps it."""
    fitted: Line = []
    room = width
    for text, style in line:
        if cell_len(text) <= room:
            fitted.append((text, style))
            room -= cell_len(text)
            continue
        cut = text
        while cut and cell_len(cut) > room - 1:
            cut = cut[:-1]
        if room > 0:
            fitted.append((cut + "…", style))
        break
    return fitted


def _fields(label: str, fields: Sequence[Segment], width: int) -> list[Line]:
    """``label`` then the fields, two spaces apart, packed into lines of ``width``; continued lines are indented
    under the first field."""
    lines: list[Line] = [[(f"{label:<{_LABEL}}", "bold")]]
    used = _LABEL
    for text, style in fields:
        if used > _LABEL and used + 2 + cell_len(text) > width:
            lines.append([(" " * _LABEL, "")])
            used = _LABEL
        if used > _LABEL:
            lines[-1].append(("  ", ""))
            used += 2
        lines[-1].append((text, style))
        used += cell_len(text)
    return lines


def _bar(fraction: float, cells: int, style: str) -> Line:
    full = round(min(max(fraction, 0.0), 1.0) * cells)
    return [("█" * full, style), ("░" * (cells - full), "dim")]


def _stage_row(p: Progress, stage: StageSpan, name_w: int, bar_w: int) -> Line:
    duration = stage.end_s - stage.start_s
    cut = p.stopped_at_s is not None and p.plan_end_s < stage.end_s  # the plan stopped before this stage's end
    if cut and stage.start_s >= p.plan_end_s:
        fraction, tail, style = 0.0, "not run (stopped early)", "dim"
    elif cut:
        ran = p.plan_end_s - stage.start_s
        fraction, tail, style = ran / duration, f"stopped at {short(ran)} of {short(duration)}", "yellow"
    elif stage.end_s <= p.elapsed_s:
        fraction, tail, style = 1.0, f"done, {short(duration)}", "green"
    elif stage.start_s <= p.elapsed_s:
        ran = p.elapsed_s - stage.start_s
        fraction = ran / duration if duration > 0 else 1.0
        tail, style = f"{short(ran)} of {short(duration)}, {short(duration - ran)} left", "cyan"
    else:
        fraction, tail, style = 0.0, short(duration), "dim"
    name = _name(stage.name or "-", name_w)
    return [(f"{name:<{name_w}} ", "bold" if style == "cyan" else ""), *_bar(fraction, bar_w, style), (f" {tail}", "")]


def _name(name: str, width: int) -> str:
    return name if cell_len(name) <= width else name[: max(width - 1, 0)] + "…"


def _grace_row(p: Progress, name_w: int, bar_w: int) -> Line:
    if p.in_grace:
        gone = max(p.grace_s - p.grace_left_s, 0.0)
        fraction = gone / p.grace_s if p.grace_s > 0 else 1.0
        tail = f"{p.in_flight} in flight, {short(p.grace_left_s)} left at most"
    else:
        fraction, tail = 0.0, f"up to {short(p.grace_s)}"
    return [(f"{'grace':<{name_w}} ", "bold" if p.in_grace else ""), *_bar(fraction, bar_w, "yellow"), (f" {tail}", "")]


def _stage_rows(p: Progress, width: int) -> list[Line]:
    stages = p.stages
    name_w = min(max([cell_len(s.name or "-") for s in stages] + [len("grace")]), 14)
    bar_w = min(max(width - name_w - 2 - _TAIL, _BAR_MIN), _BAR_MAX)
    current = next((i for i, s in enumerate(stages) if p.elapsed_s < s.end_s), len(stages) - 1)
    low = min(max(current - 1, 0), max(len(stages) - MAX_STAGE_ROWS, 0))
    high = min(low + MAX_STAGE_ROWS, len(stages))
    rows: list[Line] = []
    if low:
        rows.append([(f"… {low} earlier stage{'s' if low > 1 else ''}", "dim")])
    rows.extend(_stage_row(p, stage, name_w, bar_w) for stage in stages[low:high])
    if high < len(stages):
        rest = stages[high:]
        span = rest[-1].end_s - rest[0].start_s
        rows.append([(f"… {len(rest)} more stage{'s' if len(rest) > 1 else ''}, {short(span)}", "dim")])
    rows.append(_grace_row(p, name_w, bar_w))
    return rows


def _header(p: Progress) -> Line:
    if p.stopped_at_s is not None:
        where = f"  grace period (stopped early at {short(p.plan_end_s)})"
    elif p.in_grace:
        where = f"  grace period (the plan took {short(p.planned_s)})"
    else:
        where = f" of {short(p.planned_s)}, stage {_stage_number(p)} of {len(p.stages)}"
    return [
        (short(p.elapsed_s), "bold"),
        (where, ""),
        ("  ends in " if not p.in_grace else "  ends ", ""),
        (eta_text(eta_of(p)), "bold"),
    ]


def _stage_number(p: Progress) -> int:
    return next((i for i, s in enumerate(p.stages, 1) if s.start_s <= p.elapsed_s < s.end_s), len(p.stages))


def progress_layout(p: Progress, width: int = WIDTH) -> list[Line]:
    """The terminal view as lines of (text, style) segments, each line at most ``width`` cells: the styles are
    rich's (``bold``, ``green``, ``cyan``, ``yellow``, ``red``, ``dim``)."""
    lines: list[Line] = [_header(p), *_stage_rows(p, width)]
    bad = "red"
    lines += _fields(
        "runs",
        [
            (f"planned {_planned(p)}", ""),
            (f"due {p.due}", ""),
            (f"submitted {p.submitted}", ""),
            (f"ended {p.ended}", ""),
            (f"in flight {p.in_flight}", ""),
        ],
        width,
    )
    lines += _fields(
        "ended",
        [
            (f"completed {p.completed}", "green"),
            (f"failed {p.failed}", bad if p.failed else ""),
            (f"errored {p.errored}", bad if p.errored else ""),
            (f"rejected {p.rejected}", bad if p.rejected else ""),
            (f"not started {p.not_started}", bad if p.not_started else ""),
        ],
        width,
    )
    lines += _fields(
        "so far" if p.window_s >= p.elapsed_s else f"last {short(p.window_s)}",
        [
            (f"offered {_per_s(p.offered_per_s)}", ""),
            (f"achieved {_per_s(p.achieved_per_s)}", ""),
            (f"failures {_rate(p.failure_rate)}", bad if p.failure_rate else ""),
            (f"q2c p50 {_latency(p.q2c_p50_s)} p99 {_latency(p.q2c_p99_s)}", ""),
        ],
        width,
    )
    throttling = _throttling(p)
    if throttling:
        lines += _fields("throttled", [(part, "yellow") for part in throttling.split(", ")], width)
    return [_fit(line, width) for line in lines]


def progress_lines(p: Progress, width: int = WIDTH) -> list[str]:
    """The terminal view as plain text: each line at most ``width`` cells."""
    return ["".join(text for text, _ in line).rstrip() for line in progress_layout(p, width)]


def progress_view(p: Progress, width: int = WIDTH) -> Text:
    """The terminal view, styled, for a live display of ``width`` columns (never wrapped)."""
    view = Text(no_wrap=True, overflow="ellipsis")
    for number, line in enumerate(progress_layout(p, width)):
        if number:
            view.append("\n")
        for text, style in line:
            view.append(text, style=style or None)
    return view
