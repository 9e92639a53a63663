"""The live dashboard's figures and page body, from progress snapshots taken once per interval. Pure.

Each interval's figures are the difference of two snapshots (``live_point``); a ``Frame`` holds what one drawing
needs, small enough to hand to another process, and ``draw`` turns it into the page body with the HTML report's
own charts (``stressor.report.html``).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from stressor.document import (
    IntervalFigures,
    IntervalLatency,
    IntervalRuns,
    MeasureFigures,
    ProfileInfo,
    Results,
    Stage,
    readonly,
)
from stressor.metrics import LatencyRecorder, Measure
from stressor.progress import Progress, Totals, window_percentiles
from stressor.report.charts import Band
from stressor.report.html import (
    failure_chart,
    latency_chart,
    load_chart,
    outcomes_chart,
    runs_chart,
    spectrum_chart,
    stage_bands,
)
from stressor.report.progress import progress_layout, short
from stressor.thresholds import Threshold
from stressor.units import format_duration

MAX_POINTS = 600  # intervals drawn: a longer run shows its latest (the report has them all)


class LivePoint(NamedTuple):
    """One interval of the run so far (seconds since the start): runs that ended in it and those open at its
    end, HTTP requests and throttling, queue-to-completion of the runs seen to end in it, and the load offered
    (runs that became due) and achieved (runs the server created), per second. Flat: cheap to hand over."""

    start: float
    end: float
    completed: int
    failed: int
    errored: int
    rejected: int
    open: int
    in_flight: int
    requests_per_s: float
    throttled_s: float
    count: int
    max: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    offered_per_s: float
    achieved_per_s: float

    def interval(self) -> IntervalFigures:
        """The interval as the report's series has it."""
        return IntervalFigures(
            start=self.start,
            end=self.end,
            runs=IntervalRuns(
                completed=self.completed,
                failed=self.failed,
                errored=self.errored,
                rejected=self.rejected,
                open=self.open,
                in_flight=self.in_flight,
            ),
            requests_per_s=self.requests_per_s,
            throttled_s=self.throttled_s,
            queue_to_completion=IntervalLatency(
                count=self.count, max=self.max, p50=self.p50, p90=self.p90, p99=self.p99
            ),
        )


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

    def per_s(count: float) -> float:
        return count / span if span > 0 else 0.0

    p50, p90, p99, top = window_percentiles(now.totals, then, (50.0, 90.0, 99.0, 100.0))
    return LivePoint(
        start=start,
        end=now.elapsed_s,
        completed=change("completed"),
        failed=change("failed"),
        errored=change("errored"),
        rejected=change("rejected"),
        open=max(now.submitted - now.completed - now.failed, 0),  # created and not yet seen to end
        in_flight=now.in_flight,
        requests_per_s=per_s(now.totals.requests - (then.requests if then is not None else 0)),
        throttled_s=max(_throttled(now.totals) - (_throttled(then) if then is not None else 0.0), 0.0),
        count=sum(now.totals.q2c_counts) - (sum(then.q2c_counts) if then is not None else 0),
        max=top,
        p50=p50,
        p90=p90,
        p99=p99,
        offered_per_s=per_s(change("due")),
        achieved_per_s=per_s(change("submitted")),
    )


@dataclass(frozen=True, slots=True)
class Frame:
    """What one drawing of the dashboard needs: the run's name, where it is, its latest intervals and snapshot;
    ``ending`` (markup, escaped by whoever wrote it) once the run is over."""

    name: str
    elapsed_s: float
    interval_s: float
    points: tuple[LivePoint, ...]
    earlier: int  # intervals before ``points``, left out
    progress: Progress | None
    ending: str | None = None
    stages: tuple[Stage, ...] = ()  # the plan's, shaded on the charts as in the report
    thresholds: tuple[Threshold, ...] = ()  # drawn as lines, judged only at the end


def _spectrum_figures(progress: Progress | None) -> MeasureFigures:
    """Queue-to-completion as the report's spectrum reads it (an encoded histogram), from the snapshot's counts."""
    recorder = LatencyRecorder()
    if progress is not None:
        histogram, totals = recorder.histogram, progress.totals
        for offset, count in enumerate(totals.q2c_counts):
            if count:
                histogram.record_value(histogram.get_value_from_index(totals.q2c_first + offset), count)
    return MeasureFigures(hdr=recorder.encode() if recorder.histogram.get_total_count() else None)


def _load_chart(points: Sequence[LivePoint], stages: Sequence[Band]) -> str:
    """The report's load chart, from the live counts: runs due and runs submitted per interval (the report counts
    them from the run records, which a live run does not keep)."""

    def line(value: Callable[[LivePoint], float]) -> tuple[tuple[float, float | None], ...]:
        return tuple((p.end, value(p)) for p in points)

    return load_chart(
        line(lambda p: p.offered_per_s),
        line(lambda p: p.achieved_per_s),
        line(lambda p: p.requests_per_s),
        achieved_name="achieved (runs created)",
        bands=stages,
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _progress_markup(progress: Progress) -> str:
    """The terminal's view of the run, its styles as classes (``s-green``...)."""
    return "\n".join(
        "".join(f'<span class="s-{style}">{_e(text)}</span>' if style else _e(text) for text, style in line).rstrip()
        for line in progress_layout(progress)
    )


def draw(frame: Frame) -> str:
    """The dashboard's body: where the run is (the terminal's view), then the report's charts of its intervals.
    The costly part of the dashboard: it runs in a process of its own, off the run's event loop."""
    intervals = [point.interval() for point in frame.points]
    results = Results(
        profile=ProfileInfo(name=frame.name),
        elapsed_s=frame.elapsed_s,
        interval_s=frame.interval_s,
        intervals=tuple(intervals),
        measures=readonly({str(Measure.QUEUE_TO_COMPLETION): _spectrum_figures(frame.progress)}),
    )
    state = "ended" if frame.ending is not None else "running"
    parts = [
        f'<header><h1>stressor live: {_e(frame.name)}</h1><p class="meta" id="state" data-state="{state}">'
        f"{_e(state)} · {_e(short(frame.elapsed_s))} · every {_e(format_duration(frame.interval_s))}</p></header>",
    ]
    if frame.ending is not None:
        parts.append(f'<p class="callout ended" id="ending">{frame.ending}</p>')
    if frame.progress is not None:
        parts.append(f'<pre class="progress" id="progress">{_progress_markup(frame.progress)}</pre>')
    bands = stage_bands(frame.stages)
    charts = [
        latency_chart(intervals, bands, pending=frame.thresholds),
        runs_chart(intervals, bands),
        outcomes_chart(intervals, bands),
        _load_chart(frame.points, bands),
        failure_chart(intervals, bands, pending=frame.thresholds),
        spectrum_chart(results, pending=frame.thresholds),
    ]
    shown = f" (the last {len(frame.points)} intervals; the report has them all)" if frame.earlier else ""
    parts.append(
        f'<section id="charts"><h2>Over time{_e(shown)}</h2><div class="charts">{"".join(charts)}</div></section>'
    )
    return "".join(parts)
