"""The live dashboard's figures and page body, from progress snapshots taken once per interval. Pure.

Each interval's figures are the difference of two snapshots (``live_point``); the charts are the HTML report's
own (``stressor.report.html``), drawn from a results document of the run so far (``live_results``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, replace

from stressor.document import IntervalFigures, IntervalLatency, IntervalRuns, ProfileInfo, Results, readonly
from stressor.governor import Governor
from stressor.metrics import MEASURE_SOURCES, Measure, Metrics
from stressor.profile import Profile
from stressor.progress import Progress, Totals, window_percentiles
from stressor.report.html import (
    Axis,
    Series,
    _chart,
    _failure_chart,
    _latency_chart,
    _runs_chart,
    _spectrum_chart,
    _time_axis,
)
from stressor.report.progress import progress_layout, short
from stressor.report.results import figures, measure_figures, plan_stages
from stressor.units import format_duration, format_rate


@dataclass(frozen=True, slots=True)
class LivePoint:
    """One interval of the run so far: its figures as the report's series has them, and the load offered (runs
    that became due) and achieved (runs the server created) in it, per second."""

    interval: IntervalFigures
    offered_per_s: float
    achieved_per_s: float


def _throttled(totals: Totals) -> float:
    """Wall time held by rate limits and server pauses (the interval series' ``throttled_s``)."""
    return totals.throttle_wait_s + (totals.server_pause_s or 0.0)


def live_point(base: Progress | None, now: Progress) -> LivePoint:
    """The interval between two snapshots of one run (from its start when ``base`` is None)."""
    then = base.totals if base is not None else None
    start = base.elapsed_s if base is not None else 0.0
    span = now.elapsed_s - start

    def change(name: str) -> int:
        return getattr(now, name) - (getattr(base, name) if base is not None else 0)

    def per_s(count: int) -> float:
        return count / span if span > 0 else 0.0

    p50, p90, p99, top = window_percentiles(now.totals, then, (50.0, 90.0, 99.0, 100.0))
    seen = sum(now.totals.q2c_counts) - (sum(then.q2c_counts) if then is not None else 0)
    interval = IntervalFigures(
        start=start,
        end=now.elapsed_s,
        runs=IntervalRuns(
            completed=change("completed"),
            failed=change("failed"),
            errored=change("errored"),
            rejected=change("rejected"),
            open=max(now.submitted - now.completed - now.failed, 0),  # created and not yet seen to end
            in_flight=now.in_flight,
        ),
        requests_per_s=per_s(now.totals.requests - (then.requests if then is not None else 0)),
        throttled_s=max(_throttled(now.totals) - (_throttled(then) if then is not None else 0.0), 0.0),
        queue_to_completion=IntervalLatency(count=seen, max=top, p50=p50, p90=p90, p99=p99),
    )
    return LivePoint(interval, per_s(change("due")), per_s(change("submitted")))


def live_results(
    metrics: Metrics, governor: Governor, profile: Profile, elapsed_s: float, points: Sequence[LivePoint]
) -> Results:
    """The results document of the run so far, as far as the charts read it: the figures abort thresholds read,
    the queue-to-completion histogram (for its spectrum), the stages and the interval series."""
    document = figures(metrics, governor, profile, elapsed_s, with_histograms=False)
    q2c = str(Measure.QUEUE_TO_COMPLETION)
    measures = dict(document.measures)
    measures[q2c] = measure_figures(
        metrics.recorders[Measure.QUEUE_TO_COMPLETION], MEASURE_SOURCES[Measure.QUEUE_TO_COMPLETION]
    )
    return replace(
        document,
        profile=ProfileInfo(name=profile.name, source=profile.source),
        elapsed_s=elapsed_s,
        measures=readonly(measures),
        stages=plan_stages(profile),
        interval_s=profile.interval_s,
        intervals=tuple(point.interval for point in points),
    )


def _load_chart(points: Sequence[LivePoint]) -> str:
    """The report's load chart, from the live counts: runs due and runs created per interval (the report counts
    them from the run records, which a live run does not keep)."""
    ends = [point.interval.end or 0.0 for point in points]
    offered = tuple(zip(ends, (p.offered_per_s for p in points), strict=True))
    achieved = tuple(zip(ends, (p.achieved_per_s for p in points), strict=True))
    requests = tuple(zip(ends, (p.interval.requests_per_s for p in points), strict=True))
    series = [
        # Drawn wide and pale under the achieved line: when the server keeps up, the two coincide.
        Series("offered (runs due)", "#a0aec0", offered, width=5.0),
        Series("achieved (runs created)", "#2b6cb0", achieved),
        Series("HTTP requests", "#d69e2e", requests),
    ]
    title = "Offered vs achieved load per interval"
    return _chart("load", title, series, _time_axis(), Axis("per second", format_rate))


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _progress_markup(progress: Progress) -> str:
    """The terminal's view of the run, its styles as classes (``s-green``...)."""
    return "\n".join(
        "".join(
            f'<span class="s-{style}">{_e(text)}</span>' if style else _e(text) for text, style in line
        ).rstrip()
        for line in progress_layout(progress)
    )


def render_live(
    results: Results, points: Sequence[LivePoint], progress: Progress | None, *, ending: str | None = None
) -> str:
    """The dashboard's body: where the run is (the terminal's view), then the report's charts; ``ending`` (markup,
    escaped by the caller), once the run is over, says where its report is."""
    intervals = [point.interval for point in points]
    name = results.profile.name or "?"
    state = "ended" if ending is not None else "running"
    parts = [
        f'<header><h1>stressor live: {_e(name)}</h1><p class="meta" id="state" data-state="{state}">'
        f"{_e(state)} · {_e(short(results.elapsed_s or 0.0))} · every "
        f"{_e(format_duration(results.interval_s or 1.0))}</p></header>",
    ]
    if ending is not None:
        parts.append(f'<p class="callout ended" id="ending">{ending}</p>')
    if progress is not None:
        parts.append(f'<pre class="progress" id="progress">{_progress_markup(progress)}</pre>')
    charts = [
        _latency_chart(intervals),
        _runs_chart(intervals),
        _load_chart(points),
        _failure_chart(intervals),
        _spectrum_chart(results),
    ]
    parts.append(f'<section id="charts"><h2>Over time</h2><div class="charts">{"".join(charts)}</div></section>')
    return "".join(parts)
