"""The HTML report: one self-contained file (inline CSS, inline SVG charts drawn here, no script). Pure.

It opens anywhere, offline, and prints; every string that comes from the results document is escaped. What it
shows: docs/reports.md#stressor-report-results.
"""

from __future__ import annotations

import bisect
import html
import math
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from stressor.document import (
    Figures,
    IntervalFigures,
    MeasureFigures,
    Results,
    RunEntry,
    Slice,
    Stage,
    VariantDifference,
)
from stressor.metrics import LatencyRecorder
from stressor.report.compare import Comparison, Judgement, Row, format_change, headline_rows
from stressor.thresholds import Status, Threshold, Verdict, format_value
from stressor.tiers import LABELS, sentences
from stressor.units import format_duration, format_rate

US_PER_S = 1_000_000
# Nothing may be fetched and no script may run: the report is data, opened from anywhere.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_WIDTH, _HEIGHT = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 20, 14, 42
_MARKERS_UP_TO = 40  # points per series below which each point gets a dot (a lone point is then visible)
_SLIVER = 0.1  # an interval shorter than this share of interval_s gives no rate (a division by almost zero)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return "0" if value == 0 else format_duration(value)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.3g}%"


# ----------------------------------------------------------------------------------------------------- charts


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart; a None y breaks the line (an interval with no data)."""

    name: str
    color: str
    points: tuple[tuple[float, float | None], ...]
    dashed: bool = False
    width: float = 2.0


@dataclass(frozen=True, slots=True)
class Axis:
    """How an axis maps values and prints its ticks."""

    label: str
    fmt: Callable[[float], str]
    log: bool = False  # log10 scale (the percentile spectrum's x)
    ticks: tuple[float, ...] | None = None  # fixed ticks; else "nice" ones from the data


@dataclass(frozen=True, slots=True)
class Guide:
    """A mark on a chart beside its series: a vertical band or line (``x``: from, to) or a horizontal line at
    ``y`` (a bound, such as an SLO's)."""

    name: str  # the ``data-guide`` attribute, for tests and readers of the markup
    label: str
    color: str
    x: tuple[float, float] | None = None
    y: float | None = None


def _nice_ticks(high: float, count: int = 5) -> list[float]:
    """0 .. a round number above ``high``, in 1 / 2 / 2.5 / 5 x 10^k steps."""
    if high <= 0 or not math.isfinite(high):
        return [0.0, 1.0]
    raw = high / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    steps = math.ceil(high / step - 1e-9)
    return [i * step for i in range(steps + 1)]


def _segments(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive points with a value: gaps are not bridged, so no line crosses missing data."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [run for run in runs if run]


def _chart(
    chart_id: str,
    title: str,
    series: Sequence[Series],
    x_axis: Axis,
    y_axis: Axis,
    guides: Sequence[Guide] = (),
) -> str:
    """An SVG line chart with axes, grid, ticks, optional guides and an HTML legend, in a ``<figure>``."""
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    values = [(x, y) for s in series for x, y in s.points if y is not None]
    parts = [
        f'<svg class="chart" data-chart="{_e(chart_id)}" viewBox="0 0 {_WIDTH} {_HEIGHT}" width="{_WIDTH}" '
        f'height="{_HEIGHT}" role="img" aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    if not values:
        parts.append(
            f'<text x="{_WIDTH / 2}" y="{_HEIGHT / 2}" text-anchor="middle" class="empty">no data for this chart</text>'
        )
        parts.append("</svg>")
        return _figure(chart_id, title, "".join(parts), series)

    def tx(x: float) -> float:
        return math.log10(x) if x_axis.log else x

    # Guides widen the axes: a bound above every point is still drawn, and shows how far off it is.
    xs = [tx(x) for x, _ in values] + [tx(x) for g in guides if g.x for x in g.x]
    x_ticks = list(x_axis.ticks) if x_axis.ticks else _nice_ticks(max(xs))
    x_lo = tx(x_ticks[0]) if x_axis.ticks else 0.0
    x_hi = max(tx(x_ticks[-1]) if x_axis.ticks else x_ticks[-1], x_lo + 1e-9)
    y_top = max([y for _, y in values] + [g.y for g in guides if g.y is not None])
    y_ticks = list(y_axis.ticks) if y_axis.ticks else _nice_ticks(y_top)
    y_hi = y_ticks[-1] or 1.0

    def px(x: float) -> float:
        return _LEFT + (min(max(tx(x), x_lo), x_hi) - x_lo) / (x_hi - x_lo) * plot_w

    def py(y: float) -> float:
        return _TOP + plot_h - min(max(y, 0.0), y_hi) / y_hi * plot_h

    parts.append('<g class="grid">')
    for tick in y_ticks:
        y = py(tick)
        parts.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_e(y_axis.fmt(tick))}</text>'
        )
    for tick in x_ticks:
        x = _LEFT + (tx(tick) - x_lo) / (x_hi - x_lo) * plot_w if x_axis.ticks else px(tick)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + plot_h}"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle" class="tick">'
            f"{_e(x_axis.fmt(tick))}</text>"
        )
    parts.append("</g>")
    parts.append(
        f'<rect class="frame" x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none"/>'
        f'<text x="{_LEFT + plot_w / 2}" y="{_HEIGHT - 6}" text-anchor="middle" class="axis">'
        f"{_e(x_axis.label)}</text>"
        f'<text transform="translate(14 {_TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" class="axis">'
        f"{_e(y_axis.label)}</text>"
    )
    parts.extend(_guide(g, px, py, plot_h) for g in guides)
    for s in series:
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        group = [f'<g class="series" data-series="{_e(s.name)}">']
        segments = _segments(s.points)
        for segment in segments:
            points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in segment)
            group.append(
                f'<polyline points="{points}" fill="none" stroke="{s.color}" stroke-width="{s.width:g}"{dash} '
                'stroke-linejoin="round" stroke-linecap="round"/>'
            )
        if sum(len(segment) for segment in segments) <= _MARKERS_UP_TO and not s.dashed:
            group.extend(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{s.color}"/>'
                for segment in segments
                for x, y in segment
            )
        group.append("</g>")
        parts.extend(group)
    parts.append("</svg>")
    return _figure(chart_id, title, "".join(parts), series, guides)


def _guide(guide: Guide, px: Callable[[float], float], py: Callable[[float], float], plot_h: float) -> str:
    """A guide's markup: a shaded band or a dashed line, labelled, under the series."""
    parts = [f'<g class="guide" data-guide="{_e(guide.name)}">']
    if guide.x is not None:
        left, right = sorted((px(guide.x[0]), px(guide.x[1])))
        if right - left >= 1:
            parts.append(
                f'<rect x="{left:.1f}" y="{_TOP}" width="{right - left:.1f}" height="{plot_h}" '
                f'fill="{guide.color}" fill-opacity="0.14"/>'
            )
        for x in sorted({left, right}):
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{_TOP}" y2="{_TOP + plot_h}" stroke="{guide.color}" '
                'stroke-width="1.5" stroke-dasharray="4 3"/>'
            )
        # Centred over the band: the knee is often the last step, at the plot's right edge, where a label
        # placed beside it would be cut off.
        centre = min(max((left + right) / 2, _LEFT + 90), _WIDTH - _RIGHT - 90)
        parts.append(
            f'<text x="{centre:.1f}" y="{_TOP + 12}" text-anchor="middle" class="guide-label">{_e(guide.label)}</text>'
        )
    if guide.y is not None:
        y = py(guide.y)
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="{guide.color}" '
            'stroke-width="1.5" stroke-dasharray="8 4"/>'
            f'<text x="{_LEFT + 4}" y="{y - 4:.1f}" class="guide-label">'
            f"{_e(guide.label)}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _figure(chart_id: str, title: str, svg: str, series: Sequence[Series], guides: Sequence[Guide] = ()) -> str:
    legend = "".join(
        f'<li><span class="swatch{" dashed" if s.dashed else ""}" style="--c:{s.color}"></span>{_e(s.name)}</li>'
        for s in series
    ) + "".join(f'<li><span class="swatch dashed" style="--c:{g.color}"></span>{_e(g.label)}</li>' for g in guides)
    return (
        f'<figure class="chart-box" id="chart-{_e(chart_id)}"><figcaption>{_e(title)}</figcaption>{svg}'
        f'<ul class="legend">{legend}</ul></figure>'
    )


def _time_axis() -> Axis:
    return Axis("seconds since the start", lambda v: f"{v:g}")


def _duration_axis(label: str) -> Axis:
    return Axis(label, lambda v: "0" if v == 0 else format_duration(v))


def _end(interval: IntervalFigures) -> float:
    return interval.end or 0.0


def _latency_chart(intervals: Sequence[IntervalFigures]) -> str:
    colors = {"p50": "#2b6cb0", "p90": "#d69e2e", "p99": "#c53030"}
    series = [
        Series(key, color, tuple((_end(i), getattr(i.queue_to_completion, key)) for i in intervals))
        for key, color in colors.items()
    ]
    return _chart(
        "latency",
        "Queue-to-completion per interval (runs the client saw end in it)",
        series,
        _time_axis(),
        _duration_axis("queue-to-completion"),
    )


def _has(intervals: Sequence[IntervalFigures], key: str) -> bool:
    """Whether the series counts ``runs.<key>`` (results written before a count existed lack it)."""
    return any(getattr(i.runs, key) is not None for i in intervals)


def _runs_chart(intervals: Sequence[IntervalFigures]) -> str:
    # Before ``in_flight`` was counted apart, ``open`` was the client's runs in flight.
    separate = _has(intervals, "in_flight")
    states = (
        ("queued", "queued (at the end)", "#805ad5"),
        ("in_progress", "in progress (at the end)", "#3182ce"),
        *((("in_flight", "in flight for the client (at the end)", "#718096"),) if separate else ()),
        ("open", "created, not yet seen to end" if separate else "in flight for the client", "#a0aec0"),
        ("completed", "completed in the interval", "#38a169"),
        ("failed", "failed in the interval", "#e53e3e"),
        ("errored", "errored in the interval (create failed)", "#dd6b20"),
        ("rejected", "rejected in the interval (429/503)", "#b7791f"),
    )
    series = [
        Series(label, color, tuple((_end(i), getattr(i.runs, key)) for i in intervals))
        for key, label, color in states
        if key not in ("errored", "rejected") or _has(intervals, key)
    ]
    return _chart("runs", "Runs by state per interval", series, _time_axis(), Axis("runs", lambda v: f"{v:g}"))


def _rate_series(intervals: Sequence[IntervalFigures], stamps: Sequence[float]) -> tuple[tuple[float, float], ...]:
    """Events per second in each interval, from their times (seconds since the start)."""
    ordered = sorted(stamps)  # bisect per interval: a soak has thousands of intervals and 100k runs
    points = []
    for interval in intervals:
        start, end = interval.start or 0.0, _end(interval)
        if end > start:
            count = bisect.bisect_left(ordered, end) - bisect.bisect_left(ordered, start)
            points.append((end, count / (end - start)))
    return tuple(points)


def _load_chart(results: Results, intervals: Sequence[IntervalFigures]) -> str:
    records, started = results.run_records, results.started_at
    due = [r.due_s for r in records if r.due_s is not None]
    created = []
    if started is not None:
        created = [r.created_at - started for r in records if r.created_at is not None]
    offered = results.load.offered_runs_per_s
    series = [
        # Drawn wide and pale under the achieved line: when the server keeps up, the two coincide.
        Series("offered (runs due)", "#a0aec0", _rate_series(intervals, due), width=5.0),
        Series("achieved (runs created by the server)", "#2b6cb0", _rate_series(intervals, created)),
        Series(
            "HTTP requests",
            "#d69e2e",
            tuple((_end(i), i.requests_per_s) for i in intervals),
        ),
    ]
    ends = [_end(i) for i in intervals]
    if offered is not None and ends:
        series.append(Series("offered, whole run", "#4a5568", ((0.0, offered), (max(ends), offered)), dashed=True))
    return _chart(
        "load", "Offered vs achieved load per interval", series, _time_axis(), Axis("per second", format_rate)
    )


def _failure_chart(intervals: Sequence[IntervalFigures]) -> str:
    # The headline's definition: failed, errored and rejected runs of those that settled. Results written
    # before intervals counted errored and rejected runs give failed / ended, and say so.
    whole = _has(intervals, "errored") or _has(intervals, "rejected")
    kinds = ("failed", "errored", "rejected") if whole else ("failed",)
    points = []
    for interval in intervals:
        runs = interval.runs
        failures = sum(getattr(runs, k) or 0 for k in kinds)
        settled = failures + (runs.completed or 0)
        points.append((_end(interval), failures / settled if settled else None))
    what = "failed, errored and rejected / settled in it" if whole else "failed / ended in it"
    return _chart(
        "failures",
        f"Failure rate per interval ({what})",
        [Series("failure rate", "#e53e3e", tuple(points))],
        _time_axis(),
        Axis("failures / settled" if whole else "failed / ended", lambda v: f"{v * 100:.3g}%"),
    )


def _spectrum_points(encoded: str) -> tuple[tuple[float, float | None], ...]:
    """(1 / (1 - percentile), value in seconds) along the histogram; the 100th percentile is left out (infinite)."""
    histogram = LatencyRecorder.decode(encoded)
    points = []
    for step in histogram.get_percentile_iterator(5):
        percentile = step.percentile_level_iterated_to
        if percentile >= 100:
            break
        points.append((1 / (1 - percentile / 100), step.value_iterated_to / US_PER_S))
    return tuple(points)


def _spectrum_label(x: float) -> str:
    percentile = 100 * (1 - 1 / x)
    return f"{percentile:.{max(0, round(math.log10(x)) - 2)}f}%"


def _spectrum_chart(results: Results) -> str:
    figures = results.measures.get("queue_to_completion")
    encoded = figures.hdr if figures is not None else None
    points = _spectrum_points(encoded) if encoded else ()
    top = max((x for x, _ in points), default=10.0)
    decades = max(2, math.ceil(math.log10(top) - 1e-9))
    ticks = tuple(10.0**k for k in range(decades + 1))
    return _chart(
        "spectrum",
        "Queue-to-completion percentile spectrum (HDR histogram)",
        [Series("queue-to-completion", "#2b6cb0", points)],
        Axis("percentile", _spectrum_label, log=True, ticks=ticks),
        _duration_axis("queue-to-completion"),
    )


# ----------------------------------------------------------------------------------------------------- tables


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Container[int] = ()) -> str:
    """A table; the ``numeric`` columns are right-aligned. Cells are escaped unless ``_Raw``."""

    def align(i: int) -> str:
        return ' class="num"' if i in numeric else ""

    head = "".join(f"<th{align(i)}>{_e(h)}</th>" for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(f"<td{align(i)}>{c if isinstance(c, _Raw) else _e(c)}</td>" for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Raw(str):
    """Markup built here (already escaped), to put in a table cell as is."""

    __slots__ = ()


def _badge(text: str, tone: str) -> _Raw:
    return _Raw(f'<span class="badge {tone}">{_e(text)}</span>')


def _measures_table(measures: Mapping[str, MeasureFigures]) -> str:
    rows = []
    for name, f in measures.items():
        rows.append(
            [
                name,
                f.count or 0,
                *(_seconds(getattr(f, k)) for k in ("p50", "p90", "p99", "max", "mean")),
                f.clamped or "",
                _Raw(f'<span class="source">{_e(f.source or "")}</span>'),
            ]
        )
    headers = ["measure", "count", "p50", "p90", "p99", "max", "mean", "clamped", "source"]
    return _table(headers, rows, numeric=range(1, 8))


def _nearest_rank(ordered: Sequence[float], p: float) -> float | None:
    return ordered[max(0, math.ceil(len(ordered) * p / 100) - 1)] if ordered else None


def _failure_rate(outcomes: Mapping[str, int]) -> float | None:
    failures = sum(outcomes.get(k, 0) for k in ("failed", "errored", "rejected"))
    settled = failures + outcomes.get("completed", 0)
    return failures / settled if settled else None


_OUTCOMES = ("completed", "failed", "errored", "rejected", "open", "unknown")


def _stage_target(stage: Stage) -> str:
    """A stage's target as planned: "20 batches/s x 4 runs", "10 -> 30 runs in flight", "pause"."""
    target = stage.target
    if target is None or target.start is None or target.end is None:
        return stage.model or "-"
    low, high = target.start, target.end
    level = f"{low:g}" if low == high else f"{low:g} -> {high:g}"
    runs = stage.runs_per_batch or 0
    per_batch = f" x {runs} runs" if target.unit == "batches/s" and runs > 1 else ""
    return f"{level} {target.unit or ''}{per_batch}".strip()


def _stages_table(records: Sequence[RunEntry], stages: Sequence[Stage]) -> str:
    """One row per stage: its name and target as planned (results written before stages were saved give the
    index alone), then the runs due in it, their outcomes, and the rates offered and achieved over it."""
    by_stage: dict[int, list[RunEntry]] = {index: [] for index in range(len(stages))}
    for record in records:
        by_stage.setdefault(record.stage or 0, []).append(record)
    rows = []
    for index, members in sorted(by_stage.items()):
        stage = stages[index] if 0 <= index < len(stages) else None
        start, end = (stage.start_s, stage.end_s) if stage is not None else (None, None)
        span = end - start if start is not None and end is not None and end > start else None
        outcomes = {k: sum(1 for r in members if r.outcome == k) for k in _OUTCOMES}
        created = sum(1 for r in members if r.created_at is not None)
        q2c = sorted(
            r.detected_s - r.due_s
            for r in members
            if r.outcome in ("completed", "failed") and r.detected_s is not None and r.due_s is not None
        )
        rows.append(
            [
                (stage.name if stage is not None else None) or index,
                _stage_target(stage) if stage is not None else "-",
                len(members),
                "-" if span is None or not records else format_rate(len(members) / span),
                "-" if span is None or not records else format_rate(created / span),
                *outcomes.values(),
                _share(_failure_rate(outcomes)),
                _seconds(_nearest_rank(q2c, 50)),
                _seconds(_nearest_rank(q2c, 99)),
            ]
        )
    headers = ["stage", "target", "runs due", "offered", "achieved", *_OUTCOMES, "failure rate", "q2c p50", "q2c p99"]
    return _table(headers, rows, numeric=range(2, 13))


def _slices_table(title: str, pieces: Mapping[str, Slice], grade_threshold: float | None) -> str:
    rows = []
    for name, piece in pieces.items():
        outcomes = {k: getattr(piece.outcomes, k) or 0 for k in _OUTCOMES}
        q2c, grades = piece.queue_to_completion, piece.grades
        rows.append(
            [
                name,
                *outcomes.values(),
                _share(_failure_rate(outcomes)),
                _seconds(q2c.p50),
                _seconds(q2c.p99),
                "-" if grades.mean is None else f"{grades.mean:.3g}",
                (grades.below_threshold or 0) if grade_threshold is not None else "-",
            ]
        )
    headers = [title, *_OUTCOMES, "failure rate", "q2c p50", "q2c p99", "grade mean", "below grade threshold"]
    return _table(headers, rows, numeric=range(1, 11))


_VERDICT_TONES = MappingProxyType(
    {Status.PASSED: ("pass", "ok"), Status.FAILED: ("FAIL", "bad"), Status.MISSING: ("NO DATA", "bad")}
)


def _verdicts_section(verdicts: Sequence[Verdict]) -> str:
    passed = sum(v.passed for v in verdicts)
    rows = []
    for v in verdicts:
        word, tone = _VERDICT_TONES[v.status]
        rows.append([_badge(word, tone), _Raw(f"<code>{_e(v.threshold.text)}</code>"), v.detail])
    return (
        f'<section id="thresholds"><h2>Thresholds: {passed} of {len(verdicts)} passed</h2>'
        f"{_table(['', 'threshold', ''], rows)}</section>"
    )


_SCENARIO_TONES = MappingProxyType({"passed": ("passed", "ok"), "failed": ("FAILED", "bad")})


def _scenario_verdicts_section(results: Results) -> str:
    """Each scenario with an expected outcome: its verdict, what its runs came to, and its goal."""
    summary = results.scenario_verdicts
    if summary is None:
        return ""
    rows = []
    for name, piece in results.scenarios.items():
        verdict = piece.verdict
        if verdict is None:
            continue
        word, tone = _SCENARIO_TONES.get(verdict.status or "", ("undecided", "muted"))
        observed = ", ".join(f"{what} {count}" for what, count in (verdict.observed or {}).items()) or "no run"
        rows.append(
            [
                _badge(word, tone),
                name,
                _Raw(f"<code>{_e(verdict.expected or '?')}</code>"),
                verdict.matched or 0,
                verdict.mismatched or 0,
                verdict.undecided or 0,
                observed,
                piece.goal or "",
            ]
        )
    passed, failed, undecided = summary.passed or 0, summary.failed or 0, summary.undecided or 0
    headers = ["", "scenario", "expected", "matched", "mismatched", "undecided", "runs came to", "goal"]
    return (
        f'<section id="scenario-verdicts"><h2>Scenarios: {passed} of {passed + failed + undecided} passed their '
        f"expected outcome</h2>"
        + _cards([("passed", passed), ("failed", failed), ("undecided", undecided)], ["failed"] if failed else [])
        + '<p class="meta">A scenario passes when a run matched its expected outcome and none mismatched; '
        "undecided runs did not end, or needed a grade that never came.</p>"
        + _table(headers, rows, numeric=range(3, 6))
        + "</section>"
    )


def _compared_value(unit: str | None, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if unit == "score" else _seconds(value)


def _difference_cell(unit: str | None, found: VariantDifference | None) -> _Raw | str:
    """``+13.8ms [6.2ms, 15.8ms]`` with a badge: significant or not."""
    if found is None or found.estimate is None:
        return "too few runs"
    sign = "+" if found.estimate > 0 else ""
    text = (
        f"{sign}{_compared_value(unit, found.estimate)} "
        f"[{_compared_value(unit, found.low)}, {_compared_value(unit, found.high)}]"
    )
    badge = _badge("significant", "warn") if found.significant else _badge("not significant", "muted")
    return _Raw(f"{_e(text)} {badge}")


def _variant_comparison_section(results: Results) -> str:
    """Per measure, a table of the variants side by side with each one's difference from the reference at p50
    and p90 (bootstrap interval), then the sentences."""
    comparison = results.variant_comparison
    if comparison is None or not comparison.measures:
        return ""
    reference = comparison.reference or "?"
    confidence = f"{(comparison.confidence or 0.95) * 100:g} %"
    parts = [
        f'<section id="variant-comparison"><h2>Variants compared with {_e(reference)}</h2>'
        f'<p class="meta">{_e(comparison.runs or "completed")} runs, exact percentiles; differences from '
        f"{_e(reference)} (the first variant) with their {_e(confidence)} bootstrap interval; significant when the "
        "interval leaves out 0 and the Mann-Whitney test agrees.</p>"
    ]
    for name, measure in comparison.measures.items():
        rows = []
        for variant, figures in measure.variants.items():
            found = measure.differences.get(variant) or {}
            is_reference = variant == reference
            rows.append(
                [
                    variant,
                    figures.count or 0,
                    *(_compared_value(measure.unit, getattr(figures, key)) for key in ("p50", "p90", "mean")),
                    *(
                        "reference" if is_reference else _difference_cell(measure.unit, found.get(key))
                        for key in ("p50", "p90")
                    ),
                ]
            )
        headers = ["variant", "runs", "p50", "p90", "mean", f"vs {reference} at p50", f"vs {reference} at p90"]
        parts.append(
            f'<h3 data-measure="{_e(name)}">{_e(LABELS.get(name, name))} '
            f'<span class="source">{_e(measure.source or "")}</span></h3>'
        )
        parts.append(_table(headers, rows, numeric=range(1, 5)))
    said = sentences(comparison)
    if said:
        parts.append('<ul class="notes">' + "".join(f"<li>{_e(line)}</li>" for line in said) + "</ul>")
    parts.append("</section>")
    return "".join(parts)


_JUDGEMENT_TONES = MappingProxyType({Judgement.BETTER: "ok", Judgement.NOISE: "ok", Judgement.WORSE: "warn"})


def _comparison_row(row: Row, regressed: set[str]) -> list[object]:
    kind = row.path.kind
    shown = ["-" if v is None else format_value(kind, v) for v in (row.base, row.new)]
    tone = "bad" if row.path.text in regressed else _JUDGEMENT_TONES.get(row.judgement, "muted")
    word = "regression" if row.path.text in regressed else str(row.judgement)
    return [row.section, row.path.name, *shown, format_change(row), _badge(word, tone)]


def _comparison_section(comparison: Comparison) -> str:
    regressed = {check.path.text for check in comparison.regressions}
    status = _badge("REGRESSED" if comparison.regressed else "no regression", "bad" if comparison.regressed else "ok")
    notes = "".join(f"<li>{_e(note)}</li>" for note in comparison.notes)
    checks = "".join(
        f"<li>{_badge('REGRESSED' if c.regressed else 'ok', 'bad' if c.regressed else 'ok')} {_e(c.sentence)}</li>"
        for c in comparison.checks
    )
    headline = headline_rows(comparison)
    rows = [_comparison_row(row, regressed) for row in headline]
    others = len(comparison.rows) - len(headline)
    more = f'<p class="meta">{others} other figures are within noise, unjudged or unchanged.</p>' if others else ""
    return (
        f'<section id="comparison"><h2>Comparison with the base run {status}</h2>'
        f'<p class="meta">base {_e(comparison.base.label)}<br>new {_e(comparison.new.label)}</p>'
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + (f'<h3>Regression rules</h3><ul class="checks">{checks}</ul>' if checks else "")
        + _table(["slice", "measure", "base", "new", "change", "judgement"], rows, numeric=(2, 3, 4))
        + more
        + "</section>"
    )


def _limits_section(results: Results) -> str:
    limits = results.limits
    retry_after = limits.retry_after or Figures()
    rows: list[list[object]] = [
        ["mode", limits.mode or "-"],
        ["held by rate limits (wall time)", _seconds(limits.throttle_wait_s)],
        # Parts of it, in results that tell them apart.
        *(
            [label, _seconds(seconds)]
            for seconds, label in (
                (limits.client_wait_s, "by the client's own rates"),
                (limits.server_rate_wait_s, "by the server's quota (stated or learned)"),
            )
            if seconds is not None
        ),
        ["paused by the server (Retry-After, quota)", _seconds(limits.server_pause_s)],
        ["waited for room in flight", _seconds(limits.capacity_wait_s)],
        ["retries", ", ".join(f"{k} {v}" for k, v in sorted((limits.retries or {}).items())) or "none"],
        [
            "Retry-After seen",
            f"{retry_after.count}x, max {_seconds(retry_after.max)}" if retry_after.count else "never",
        ],
        [
            "unparseable headers",
            ", ".join(f"{k} {v}" for k, v in sorted((limits.unparseable_headers or {}).items())) or "none",
        ],
        ["runs in flight limit at the end", limits.runs_in_flight_limit or "none"],
        ["breaker", limits.breaker or "did not trip"],
    ]
    errors = results.errors or {}
    requests = results.requests or {}
    parts = ['<section id="limits"><h2>Limits, errors and requests</h2><div class="cols">']
    parts.append(f"<div><h3>Limits</h3>{_table(['', ''], rows)}</div>")
    parts.append(
        "<div><h3>Errors by cause</h3>"
        + (_table(["cause", "runs"], sorted(errors.items()), numeric=(1,)) if errors else "<p>none</p>")
        + "<h3>HTTP requests</h3>"
        + (
            _table(["purpose and outcome", "requests"], sorted(requests.items()), numeric=(1,))
            if requests
            else "<p>none</p>"
        )
        + "</div>"
    )
    hooks = results.webhooks
    if hooks is not None:
        bad = sum((hooks.bad_signature or {}).values())
        hook_rows = [
            [k.replace("_", " "), getattr(hooks, k) or 0]
            for k in ("received", "accepted", "duplicates", "rejected_other", "unknown_type", "batches_polled_late")
        ]
        hook_rows.insert(2, ["bad signature", bad])
        parts.append(f"<div><h3>Webhooks</h3>{_table(['', 'count'], hook_rows, numeric=(1,))}</div>")
    parts.append("</div></section>")
    return "".join(parts)


def _grades_section(results: Results) -> str:
    grades = results.grades
    if not grades.count and not grades.ungraded:
        return ""
    threshold = grades.threshold
    cells: list[tuple[str, object]] = [("graded", grades.count or 0), ("ungraded", grades.ungraded or 0)]
    for key in ("mean", "p10", "p50", "min"):
        value = getattr(grades, key)
        cells.append((key, "-" if value is None else f"{value:.3g}"))
    if threshold is not None:
        cells.append((f"below {threshold:g} (quality failures)", grades.below_threshold or 0))
    return f'<section id="grades"><h2>Grades</h2>{_cards(cells)}</section>'


def _cards(cells: Sequence[tuple[str, object]], bad: Iterable[str] = ()) -> str:
    flagged = set(bad)
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card{" bad" if label in flagged else ""}"><div class="value">{_e(value)}</div>'
            f'<div class="label">{_e(label)}</div></div>'
            for label, value in cells
        )
        + "</div>"
    )


# ----------------------------------------------------------------------------------------------------- page

_CSS = """
:root{--fg:#1a202c;--muted:#5a6473;--line:#e2e8f0;--bg:#fff;--panel:#f7fafc;--ok:#276749;--okbg:#e6f4ea;
--bad:#9b2c2c;--badbg:#fde8e8;--warn:#975a16;--warnbg:#fefcbf}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
Helvetica,Arial,sans-serif}
main{max-width:1160px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 10px;padding-bottom:4px;
border-bottom:1px solid var(--line)}h3{font-size:15px;margin:16px 0 6px}
.meta{color:var(--muted);margin:2px 0}
.callout{border-left:4px solid var(--bad);background:var(--badbg);padding:8px 12px;margin:10px 0;border-radius:4px}
.callout.warn{border-color:var(--warn);background:var(--warnbg)}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:108px}
.card .value{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
.card .label{color:var(--muted);font-size:12px}
.card.bad{border-color:#feb2b2;background:var(--badbg)}
table{border-collapse:collapse;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;background:var(--panel)}
.num{text-align:right}
.source{color:var(--muted);font-size:12px}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600;white-space:nowrap}
.badge.ok{color:var(--ok);background:var(--okbg)}.badge.bad{color:var(--bad);background:var(--badbg)}
.badge.warn{color:var(--warn);background:var(--warnbg)}.badge.muted{color:var(--muted);background:var(--panel)}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px}
figure.chart-box{margin:0;border:1px solid var(--line);border-radius:6px;padding:10px 12px;background:#fff}
figcaption{font-weight:600;margin-bottom:6px}
svg.chart{display:block;width:100%;height:auto}
svg.chart .grid line{stroke:#edf2f7;stroke-width:1}
svg.chart .frame{stroke:#a0aec0;stroke-width:1}
svg.chart text{font:11px system-ui,sans-serif;fill:#4a5568}
svg.chart text.axis{font-size:12px;fill:#2d3748}
svg.chart text.empty{font-size:14px;fill:#a0aec0}
svg.chart text.guide-label{font-size:11px;font-weight:600;fill:#2d3748}
.knee{font-size:16px;margin:8px 0 4px}
.legend{list-style:none;margin:6px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px}
.swatch{display:inline-block;width:18px;height:3px;background:var(--c);vertical-align:middle;margin-right:6px}
.swatch.dashed{background:repeating-linear-gradient(90deg,var(--c) 0 6px,transparent 6px 10px)}
.cols{display:flex;flex-wrap:wrap;gap:28px}
ul.notes,ul.checks{padding-left:18px}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media print{.charts{display:block}figure.chart-box{break-inside:avoid;margin-bottom:12px}}
"""


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "?"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _or_unknown(text: str | None) -> str:
    return "?" if text is None else text


def _header(results: Results) -> str:
    profile, target = results.profile, results.target
    where = "the embedded simulator" if target.embedded_simulator else _or_unknown(target.base_url)
    parts = [
        f"<header><h1>stressor report: {_e(_or_unknown(profile.name))}</h1>",
        f'<p class="meta">profile file {_e(_or_unknown(profile.source))} · target {_e(_or_unknown(target.kind))} '
        f"against {_e(where)}</p>",
        f'<p class="meta">started {_e(_when(results.started_at))} · ended {_e(_when(results.ended_at))}'
        f" · {_e(_seconds(results.elapsed_s))} (grace included)</p>",
    ]
    if results.interrupted:
        parts.append('<p class="callout">Interrupted: the figures cover what was gathered until then.</p>')
    elif results.stop_reason:
        parts.append(f'<p class="callout">Stopped early: {_e(results.stop_reason)}</p>')
    if results.limits.breaker:
        parts.append(f'<p class="callout">Breaker: {_e(results.limits.breaker)}</p>')
    generator = results.generator
    if generator.behind:
        parts.append(
            '<p class="callout warn">The generator fell behind its schedule: dispatch lag p99 '
            f"{_e(_seconds(generator.dispatch_lag_p99))} &gt; {_e(_seconds(generator.limit))}; "
            "latencies include client-side delay and less load was offered than planned.</p>"
        )
    parts.append("</header>")
    return "".join(parts)


def _summary(results: Results) -> str:
    runs, load = results.runs, results.load
    not_started = sum((runs.not_started or {}).values())
    offered, achieved = load.offered_runs_per_s, load.achieved_runs_per_s
    per_run, cost = load.requests_per_ended_run, results.estimated_cost_cents
    counts = {k: getattr(runs, k) or 0 for k in ("planned", "submitted", "completed", "failed", "errored", "rejected")}
    cells: list[tuple[str, object]] = [
        *counts.items(),
        ("open at the end", runs.open or 0),
        ("not started", not_started),
        ("failure rate", _share(results.failure_rate)),
        ("offered", "-" if offered is None else format_rate(offered)),
        ("achieved", "-" if achieved is None else format_rate(achieved)),
        ("HTTP requests", sum((results.requests or {}).values())),
        ("requests per ended run", "-" if per_run is None else f"{per_run:.2g}"),
        ("estimated cost", "-" if cost is None else f"{cost / 100:.2f} USD"),
    ]
    bad = [k for k in ("failed", "errored", "rejected") if counts[k]]
    bad += ["not started"] if not_started else []
    bad += ["open at the end"] if runs.open else []
    causes = ", ".join(f"{cause} {count}" for cause, count in sorted((runs.not_started or {}).items()))
    note = f'<p class="meta">not started: {_e(causes)}</p>' if causes else ""
    return f'<section id="summary"><h2>Runs</h2>{_cards(cells, bad)}{note}</section>'


def _whole_intervals(results: Results) -> Sequence[IntervalFigures]:
    """The intervals without the sliver a run usually ends with (2.0 s .. 2.0007 s): its counts are near zero
    and its rates a division by almost nothing, which would draw a cliff at the end of every chart."""
    intervals = results.intervals
    interval_s = results.interval_s or 1.0
    whole = [i for i in intervals if _end(i) - (i.start or 0.0) >= _SLIVER * interval_s]
    return whole or intervals


def render_html(
    results: Results,
    verdicts: Sequence[Verdict] | None = None,
    comparison: Comparison | None = None,
) -> str:
    """The whole report as one HTML page: no network, no script; every document string escaped."""
    intervals = _whole_intervals(results)
    records = results.run_records
    body = [_header(results), _summary(results)]
    if verdicts:
        body.append(_verdicts_section(verdicts))
    body.append(_scenario_verdicts_section(results))
    body.append(f'<section id="measures"><h2>Measures</h2>{_measures_table(results.measures)}</section>')
    charts = [
        _latency_chart(intervals),
        _runs_chart(intervals),
        _load_chart(results, intervals),
        _failure_chart(intervals),
        _spectrum_chart(results),
    ]
    interval_s = results.interval_s
    every = f" (every {_seconds(interval_s)})" if interval_s else ""
    body.append(
        f'<section id="charts"><h2>Over time{_e(every)}</h2><div class="charts">{"".join(charts)}</div></section>'
    )
    if comparison is not None:
        body.append(_comparison_section(comparison))
    body.append(_grades_section(results))
    stages = results.stages or ()
    if records or stages:
        table = _stages_table(records, stages)
        body.append(f'<section id="stages"><h2>By stage</h2>{table}</section>')
    for title, key in (("variant", "variants"), ("scenario", "scenarios")):
        pieces = results.slices(title)
        if pieces:
            table = _slices_table(title, pieces, results.grades.threshold)
            body.append(f'<section id="{key}"><h2>By {title}</h2>{table}</section>')
        if title == "variant":
            body.append(_variant_comparison_section(results))
    body.append(_limits_section(results))
    body.append(f"<footer>{_e(_or_unknown(results.schema))} · written by stressor</footer>")
    title = f"stressor: {_or_unknown(results.profile.name)} ({_when(results.started_at)})"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


def _knee(steps: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """The last step that held before the first that broke, and that first (each None when there is none)."""
    last_held = None
    for step in steps:
        if not step.get("held"):
            return last_held, step
        last_held = step
    return last_held, None


def _knee_sentence(held: Mapping[str, Any] | None, broke: Mapping[str, Any] | None, load_label: str) -> str:
    if broke is None:
        return (
            f"No step broke the SLO: the last held at {float(held['level']):g} {load_label}."
            if held is not None
            else "No step ran."
        )
    if held is None:
        return f"Knee: the first step, {float(broke['level']):g} {load_label}, already broke the SLO."
    return f"Knee: held at {float(held['level']):g}, broke at {float(broke['level']):g} {load_label}."


def _slo_bounds(slos: Sequence[Threshold], prefix: str) -> list[Threshold]:
    """The SLOs on the whole run's measure ``prefix`` (scoped ones are per slice: not one line to draw)."""
    return [t for t in slos if t.path.scope is None and (t.path.name == prefix or t.path.name.startswith(prefix + "."))]


def render_capacity_html(
    title: str, load_label: str, steps: Sequence[Mapping[str, Any]], slos: Sequence[Threshold] = ()
) -> str:
    """A capacity search as one page: the knee in words and marked on every chart (a band from the last step
    that held to the first that broke), the SLO bounds as dashed lines, latency (p95 dashed, drawn over p99),
    failure rate and completed runs per second against load, and the table of steps.

    ``steps`` are ``{"level", "p50", "p95", "p99", "failure_rate", "completed_per_s", "held"}`` mappings, in the
    order they ran; ``slos`` the thresholds each step was held to.
    """
    load_axis = Axis(load_label, lambda v: f"{v:g}")
    held, broke = _knee(steps)
    knee: list[Guide] = []
    if broke is not None:
        low = float(held["level"]) if held is not None else float(broke["level"])
        label = f"knee: held {low:g}, broke {float(broke['level']):g}" if held else f"broke {float(broke['level']):g}"
        knee.append(Guide("capacity-knee", label, "#c53030", x=(low, float(broke["level"]))))
    elif held is not None:
        knee.append(
            Guide("capacity-knee", f"held up to {float(held['level']):g}", "#2f855a", x=(float(held["level"]),) * 2)
        )
    latency_bounds = [
        Guide("slo", f"SLO {t.text}", "#6b46c1", y=t.limit) for t in _slo_bounds(slos, "queue_to_completion")
    ]
    failure_bounds = [Guide("slo", f"SLO {t.text}", "#6b46c1", y=t.limit) for t in _slo_bounds(slos, "failure_rate")]
    # p95 is drawn last and dashed: when it sits on p99 (few runs a step) both stay visible.
    latency = [
        Series(key, color, tuple((float(s["level"]), s.get(key)) for s in steps), dashed=dashed, width=width)
        for key, color, dashed, width in (
            ("p50", "#2b6cb0", False, 2.0),
            ("p99", "#c53030", False, 3.5),
            ("p95", "#d69e2e", True, 2.5),
        )
    ]
    failures = [
        Series("failure rate", "#c53030", tuple((float(s["level"]), s.get("failure_rate")) for s in steps))
    ]
    throughput = [
        Series(
            "completed per second", "#2f855a", tuple((float(s["level"]), s.get("completed_per_s")) for s in steps)
        )
    ]
    charts = [
        _chart(
            "capacity-latency",
            "Queue-to-completion against load",
            latency,
            load_axis,
            _duration_axis("queue-to-completion"),
            [*knee, *latency_bounds],
        ),
        _chart(
            "capacity-failures",
            "Failure rate against load",
            failures,
            load_axis,
            Axis("failure rate", lambda v: f"{v:.0%}"),
            [*knee, *failure_bounds],
        ),
        _chart(
            "capacity-throughput",
            "Runs completed per second against load",
            throughput,
            load_axis,
            Axis("completed per second", format_rate),
            knee,
        ),
    ]
    rows = [
        [
            f"{s['level']:g}",
            _seconds(s.get("p50")),
            _seconds(s.get("p95")),
            _seconds(s.get("p99")),
            _share(s.get("failure_rate")),
            f"{float(s.get('completed_per_s') or 0):.3g}",
            _badge("held", "ok") if s.get("held") else _badge("BROKE", "bad"),
        ]
        for s in steps
    ]
    table = _table([load_label, "p50", "p95", "p99", "failure rate", "completed/s", "SLO"], rows, range(6))
    slo_text = ", ".join(t.text for t in slos)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="knee" id="knee"><strong>{_e(_knee_sentence(held, broke, load_label))}</strong></p>'
        + (f'<p class="meta" id="slo">SLO: {_e(slo_text)}</p>' if slo_text else "")
        + f'<section><div class="charts">{"".join(charts)}</div></section>'
        f"<section><h2>Steps</h2>{table}</section></main></body></html>"
    )
