"""The HTML report: one self-contained file (inline CSS, inline SVG charts drawn here, no script). Pure.

It opens anywhere, offline, and prints; every string that comes from the results document is escaped. A verdict
banner says at a glance whether the run passed and why; the charts (``stressor.report.charts``) carry the plan's
stages and the thresholds. What it shows: docs/reports.md#stressor-report-results.
"""

from __future__ import annotations

import bisect
import html
import math
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType

from stressor.document import (
    ComparedMeasure,
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
from stressor.report.charts import Axis, Band, Guide, Key, Mark, Series, line_chart, rows_chart
from stressor.report.charts import Row as ChartRow
from stressor.report.compare import Comparison, Judgement, Row, format_change, headline_rows
from stressor.thresholds import Kind, Status, Threshold, Verdict, format_value
from stressor.tiers import LABELS, sentences
from stressor.units import format_duration, format_rate

US_PER_S = 1_000_000
# Nothing may be fetched and no script may run: the report is data, opened from anywhere.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_SLIVER = 0.1  # an interval shorter than this share of interval_s gives no rate (a division by almost zero)
_PASSED, _FAILED, _NO_DATA = "#2f855a", "#c53030", "#718096"
# Outcomes in one colour each, wherever they are drawn.
OUTCOME_COLORS = MappingProxyType(
    {
        "completed": "#38a169",
        "failed": "#e53e3e",
        "errored": "#dd6b20",
        "rejected": "#b7791f",
        "open": "#a0aec0",
        "unknown": "#553c9a",
    }
)
PERCENTILE_COLORS = MappingProxyType({"p50": "#2b6cb0", "p90": "#d69e2e", "p95": "#d69e2e", "p99": "#c53030"})


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return "0" if value == 0 else format_duration(value)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.3g}%"


# ----------------------------------------------------------------------------------------------------- charts


def time_axis() -> Axis:
    return Axis("seconds since the start", lambda v: f"{v:g}", point=lambda v: f"at {v:g}s")


def _duration_axis(label: str) -> Axis:
    return Axis(label, lambda v: "0" if v == 0 else format_duration(v))


def _end(interval: IntervalFigures) -> float:
    return interval.end or 0.0


def stage_bands(stages: Sequence[Stage] | None) -> tuple[Band, ...]:
    """The plan's stages as bands over the time charts (results written before stages were saved have none)."""
    return tuple(
        Band(stage.name or f"stage {index}", stage.start_s, stage.end_s, _stage_target(stage))
        for index, stage in enumerate(stages or ())
        if stage.start_s is not None and stage.end_s is not None and stage.end_s > stage.start_s
    )


def _verdict_word(verdict: Verdict) -> str:
    return "passed" if verdict.passed else "no data" if verdict.status is Status.MISSING else "FAILED"


def threshold_guides(verdicts: Sequence[Verdict], wanted: Callable[[Threshold], bool]) -> list[Guide]:
    """A dashed line per whole-run threshold that ``wanted`` picks, at its limit, coloured by its verdict and
    labelled with it (a threshold on one variant or scenario is not a line on the whole run's chart)."""
    guides, seen = [], set()
    for verdict in verdicts:
        threshold = verdict.threshold
        if threshold.path.scope is not None or not wanted(threshold) or threshold.text in seen:
            continue
        seen.add(threshold.text)
        color = _PASSED if verdict.passed else _NO_DATA if verdict.status is Status.MISSING else _FAILED
        word = _verdict_word(verdict)
        label = f"threshold {threshold.text} (whole run): {word}, {verdict.detail}"
        guides.append(Guide("threshold", label, color, y=threshold.limit, tag=f"{threshold.text}: {word}"))
    return guides


def pending_guides(thresholds: Sequence[Threshold], wanted: Callable[[Threshold], bool]) -> list[Guide]:
    """A grey dashed line per whole-run threshold that ``wanted`` picks, not judged yet (the live dashboard's: a
    threshold is checked on the whole run, at its end)."""
    picked = {t.text: t for t in thresholds if t.path.scope is None and wanted(t)}
    return [
        Guide("threshold", f"threshold {text} (whole run): checked at the end", _NO_DATA, y=t.limit, tag=text)
        for text, t in picked.items()
    ]


def _guides(
    verdicts: Sequence[Verdict], pending: Sequence[Threshold], wanted: Callable[[Threshold], bool]
) -> list[Guide]:
    return threshold_guides(verdicts, wanted) + pending_guides(pending, wanted)


def _on(measure: str, kind: Kind) -> Callable[[Threshold], bool]:
    """Thresholds on ``measure`` (or on one of its statistics) of the given kind."""

    def wanted(threshold: Threshold) -> bool:
        name = threshold.path.name
        return threshold.path.kind is kind and (name == measure or name.startswith(measure + "."))

    return wanted


def latency_chart(
    intervals: Sequence[IntervalFigures],
    stages: Sequence[Band] = (),
    verdicts: Sequence[Verdict] = (),
    pending: Sequence[Threshold] = (),
) -> str:
    series = [
        Series(key, PERCENTILE_COLORS[key], tuple((_end(i), getattr(i.queue_to_completion, key)) for i in intervals))
        for key in ("p50", "p90", "p99")
    ]
    return line_chart(
        "latency",
        "Queue-to-completion per interval (runs the client saw end in it)",
        series,
        time_axis(),
        _duration_axis("queue-to-completion"),
        _guides(verdicts, pending, _on("queue_to_completion", Kind.DURATION)),
        bands=stages,
    )


def _has(intervals: Sequence[IntervalFigures], key: str) -> bool:
    """Whether the series counts ``runs.<key>`` (results written before a count existed lack it)."""
    return any(getattr(i.runs, key) is not None for i in intervals)


def runs_chart(intervals: Sequence[IntervalFigures], stages: Sequence[Band] = ()) -> str:
    """The runs in flight at each interval's end, stacked by where they are: the server's queued and in progress,
    ended but not yet seen by the client, and (for the client) created but not yet answered."""
    separate = _has(intervals, "in_flight")
    # Without the server's stamps (the live dashboard, older results) where a created run is cannot be told:
    # one layer, not a guess that they all ended unseen.
    server = _has(intervals, "queued") or _has(intervals, "in_progress")

    def parts(interval: IntervalFigures) -> tuple[int, ...]:
        runs = interval.runs
        queued, running, created = runs.queued or 0, runs.in_progress or 0, runs.open or 0
        # The server's stamps and the client's view may disagree by a run at an edge: the stack never goes below 0.
        unseen = max(created - queued - running, 0)
        pending = max((runs.in_flight or 0) - created, 0)
        return (queued, running, unseen, pending) if server else (created, pending)

    layers = (
        (
            ("queued (server)", "#805ad5"),
            ("in progress (server)", "#3182ce"),
            ("ended, not yet seen by the client", "#81e6d9"),
        )
        if server
        else (("created, not yet seen to end", "#3182ce"),)
    ) + ((("create sent, not yet answered", "#fbd38d"),) if separate else ())
    figures = [parts(i) for i in intervals]
    series = [
        Series(
            name, color, tuple((_end(i), float(f[index])) for i, f in zip(intervals, figures, strict=True)), kind="area"
        )
        for index, (name, color) in enumerate(layers)
    ]
    return line_chart(
        "runs",
        "Runs in flight at the end of each interval, by state",
        series,
        time_axis(),
        Axis("runs in flight", lambda v: f"{v:g}", least=1.0, whole=True),
        bands=stages,
    )


def outcomes_chart(intervals: Sequence[IntervalFigures], stages: Sequence[Band] = ()) -> str:
    """Runs that ended in each interval, stacked by how: completed, failed, errored (the create failed),
    rejected (429/503)."""
    kinds = [
        k for k in ("completed", "failed", "errored", "rejected") if k in ("completed", "failed") or _has(intervals, k)
    ]
    labels = {
        "completed": "completed",
        "failed": "failed",
        "errored": "errored (create failed)",
        "rejected": "rejected (429/503)",
    }
    series = [
        Series(
            labels[k],
            OUTCOME_COLORS[k],
            tuple((_end(i), float(getattr(i.runs, k) or 0)) for i in intervals),
            kind="bar",
        )
        for k in kinds
    ]
    return line_chart(
        "outcomes",
        "Runs ended per interval, by outcome",
        series,
        time_axis(),
        Axis("runs", lambda v: f"{v:g}", least=1.0, whole=True),
        bands=stages,
    )


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


Points = tuple[tuple[float, float | None], ...]


def load_chart(
    offered: Points,
    achieved: Points,
    requests: Points,
    *,
    achieved_name: str = "achieved (runs created by the server)",
    whole_run: float | None = None,
    bands: Sequence[Band] = (),
    verdicts: Sequence[Verdict] = (),
) -> str:
    """Runs offered (due) and achieved per second, and HTTP requests per second, per interval; ``whole_run``:
    the whole run's offered rate, dashed."""
    series = [
        # Drawn wide and pale under the achieved line: when the server keeps up, the two coincide.
        Series("offered (runs due)", "#a0aec0", offered, width=5.0),
        Series(achieved_name, "#2b6cb0", achieved),
        Series("HTTP requests", "#d69e2e", requests),
    ]
    ends = [x for x, _ in offered + achieved + requests]
    if whole_run is not None and ends:
        series.append(Series("offered, whole run", "#4a5568", ((0.0, whole_run), (max(ends), whole_run)), dashed=True))
    on_load = threshold_guides(verdicts, lambda t: t.path.name in ("offered_runs_per_s", "achieved_runs_per_s"))
    return line_chart(
        "load",
        "Offered vs achieved load per interval",
        series,
        time_axis(),
        Axis("per second", format_rate),
        on_load,
        bands=bands,
    )


def _load_chart(
    results: Results,
    intervals: Sequence[IntervalFigures],
    stages: Sequence[Band] = (),
    verdicts: Sequence[Verdict] = (),
) -> str:
    """The load chart from the run records: runs due, and runs the server created, per interval."""
    records, started = results.run_records, results.started_at
    due = [r.due_s for r in records if r.due_s is not None]
    created = []
    if started is not None:
        created = [r.created_at - started for r in records if r.created_at is not None]
    return load_chart(
        _rate_series(intervals, due),
        _rate_series(intervals, created),
        tuple((_end(i), i.requests_per_s) for i in intervals),
        whole_run=results.load.offered_runs_per_s,
        bands=stages,
        verdicts=verdicts,
    )


def failure_chart(
    intervals: Sequence[IntervalFigures],
    stages: Sequence[Band] = (),
    verdicts: Sequence[Verdict] = (),
    pending: Sequence[Threshold] = (),
) -> str:
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
    # The axis fits the data (at least 0..1 %), never a fixed 0..100 % on which a few per cent is a flat line.
    return line_chart(
        "failures",
        f"Failure rate per interval ({what})",
        [Series("failure rate", "#e53e3e", tuple(points))],
        time_axis(),
        Axis("failures / settled" if whole else "failed / ended", lambda v: f"{v * 100:.3g}%", least=0.01),
        _guides(verdicts, pending, lambda t: t.path.name == "failure_rate"),
        bands=stages,
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


def spectrum_chart(results: Results, verdicts: Sequence[Verdict] = (), pending: Sequence[Threshold] = ()) -> str:
    figures = results.measures.get("queue_to_completion")
    encoded = figures.hdr if figures is not None else None
    points = _spectrum_points(encoded) if encoded else ()
    top = max((x for x, _ in points), default=10.0)
    decades = max(2, math.ceil(math.log10(top) - 1e-9))
    ticks = tuple(10.0**k for k in range(decades + 1))
    exact = 100 * (1 - 1 / 10**decades)
    axis = Axis(
        "percentile",
        _spectrum_label,
        log=True,
        ticks=ticks,
        point=lambda x: f"percentile {100 * (1 - 1 / x):.{max(2, round(math.log10(exact)))}g}%",
    )
    return line_chart(
        "spectrum",
        "Queue-to-completion percentile spectrum (HDR histogram)",
        [Series("queue-to-completion", "#2b6cb0", points)],
        axis,
        _duration_axis("queue-to-completion"),
        _guides(verdicts, pending, _on("queue_to_completion", Kind.DURATION)),
    )


def _stat_of(threshold: Threshold) -> str:
    return threshold.path.name.rpartition(".")[2]


def _slice_latency_chart(kind: str, pieces: Mapping[str, Slice], verdicts: Sequence[Verdict]) -> str:
    """Queue-to-completion p50 / p90 / p99 of each variant or scenario, as dots on one axis, and the thresholds
    on that scope's queue-to-completion as vertical lines (one per limit)."""
    rows = []
    for name, piece in pieces.items():
        q2c = piece.queue_to_completion
        marks = tuple(
            Mark(key, PERCENTILE_COLORS[key], value, shape="dot", title=f"{kind} {name}: {key} {_seconds(value)}")
            for key in ("p50", "p90", "p99")
            if (value := getattr(q2c, key)) is not None
        )
        tone = _SCENARIO_TONES.get(piece.verdict.status or "", ("", "muted"))[1] if piece.verdict else ""
        rows.append(ChartRow(name, marks, f"{q2c.count or 0} ended", tone))
    limits: dict[float, list[str]] = {}
    for verdict in verdicts:
        threshold = verdict.threshold
        if threshold.path.scope == kind and _on("queue_to_completion", Kind.DURATION)(threshold):
            limits.setdefault(threshold.limit, []).append(f"{_stat_of(threshold)} < {threshold.limit_text}")
    guides = [
        Guide("threshold", f"threshold on the {kind}s: " + ", ".join(sorted(set(texts))), _NO_DATA, x=(limit, limit))
        for limit, texts in limits.items()
    ]
    keys = [Key(key, PERCENTILE_COLORS[key], "dot") for key in ("p50", "p90", "p99")]
    keys += [Key(g.label, g.color, "dashed") for g in guides]
    return rows_chart(
        f"{kind}-latency",
        f"Queue-to-completion by {kind} (p50, p90, p99)",
        rows,
        _duration_axis("queue-to-completion"),
        keys,
        guides,
    )


def _slice_outcomes_chart(kind: str, pieces: Mapping[str, Slice]) -> str:
    """Each variant's or scenario's runs, stacked by outcome, with its failure rate (and verdict) at the right."""
    rows = []
    shown = [
        k for k in _OUTCOMES if k in ("completed", "failed") or any(getattr(p.outcomes, k) for p in pieces.values())
    ]
    for name, piece in pieces.items():
        counts = {k: getattr(piece.outcomes, k) or 0 for k in shown}
        total = sum(counts.values())
        marks, start = [], 0.0
        for k, count in counts.items():
            if count:
                share = f" ({count / total:.1%})" if total else ""
                marks.append(
                    Mark(k, OUTCOME_COLORS[k], start, start + count, title=f"{kind} {name}: {count} {k}{share}")
                )
                start += count
        note = f"{_share(_failure_rate(counts))} failed"
        tone = ""
        if piece.verdict is not None:
            word, tone = _SCENARIO_TONES.get(piece.verdict.status or "", ("undecided", "muted"))
            note = f"{word}, {note}"
        rows.append(ChartRow(name, tuple(marks), note, tone))
    keys = [Key(k, OUTCOME_COLORS[k], "area") for k in shown]
    return rows_chart(
        f"{kind}-outcomes",
        f"Runs by {kind} and outcome",
        rows,
        Axis("runs", lambda v: f"{v:g}", least=1.0, whole=True),
        keys,
    )


def _difference_chart(name: str, measure: ComparedMeasure, reference: str) -> str:
    """Each variant's difference from the reference at p50 and p90, with its bootstrap interval, around 0."""
    unit = measure.unit
    rows = []
    for variant in measure.variants:
        if variant == reference:
            continue
        found = measure.differences.get(variant) or {}
        for key in ("p50", "p90"):
            difference = found.get(key)
            label = f"{variant} at {key}"
            if difference is None or difference.estimate is None:
                rows.append(ChartRow(label, (), "too few runs", "muted"))
                continue
            color = "#dd6b20" if difference.significant else _NO_DATA
            verdict = "significant" if difference.significant else "not significant"
            low, high = difference.low, difference.high
            text = (
                f"{variant} - {reference} at {key}: {_signed(unit, difference.estimate)} "
                f"[{_compared_value(unit, low)}, {_compared_value(unit, high)}], {verdict}"
            )
            marks = []
            if low is not None and high is not None:
                marks.append(Mark("interval", color, low, high, shape="span", title=text))
            marks.append(Mark("difference", color, difference.estimate, shape="dot", title=text))
            rows.append(ChartRow(label, tuple(marks), verdict, "bad" if difference.significant else "muted"))
    axis = (
        Axis(f"difference from {reference}", lambda v: f"{v:+.2g}" if v else "0")
        if unit == "score"
        else Axis(f"difference from {reference}", lambda v: ("+" if v > 0 else "") + _seconds(v) if v else "0")
    )
    keys = [
        Key("significant difference", "#dd6b20", "span"),
        Key("not significant", _NO_DATA, "span"),
        Key(f"no difference from {reference}", "#2d3748", "dashed"),
    ]
    return rows_chart(
        f"difference-{name}",
        f"{LABELS.get(name, name)}: difference from {reference}",
        rows,
        axis,
        keys,
        [Guide("zero", f"no difference from {reference}", "#2d3748", x=(0.0, 0.0))],
    )


def _signed(unit: str | None, value: float) -> str:
    return ("+" if value > 0 else "") + _compared_value(unit, value)


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
        "interval leaves out 0 and the Mann-Whitney test agrees.</p>",
        '<div class="charts">'
        + "".join(_difference_chart(name, measure, reference) for name, measure in comparison.measures.items())
        + "</div>",
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


def _cards(cells: Sequence[tuple[str, object]], bad: Iterable[str] = (), simulated: Iterable[str] = ()) -> str:
    flagged, made_up = set(bad), set(simulated)

    def kind(label: str) -> str:
        return (" bad" if label in flagged else "") + (" sim" if label in made_up else "")

    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card{kind(label)}"><div class="value">{_e(value)}</div>'
            f'<div class="label">{_e(label)}</div></div>'
            for label, value in cells
        )
        + "</div>"
    )


# ----------------------------------------------------------------------------------------------------- page

CSS = """
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
.banner{display:flex;gap:18px;align-items:stretch;border:2px solid var(--c);background:var(--cbg);border-radius:8px;
padding:12px 16px;margin:16px 0 6px}
.banner.ok{--c:#38a169;--cbg:var(--okbg)}.banner.bad{--c:#e53e3e;--cbg:var(--badbg)}
.banner.warn{--c:#d69e2e;--cbg:var(--warnbg)}.banner.muted{--c:#a0aec0;--cbg:var(--panel)}
.banner .word{flex:0 0 190px;font-size:32px;font-weight:800;line-height:1.1;letter-spacing:.5px;color:var(--c);
display:flex;flex-direction:column;justify-content:center;border-right:1px solid var(--c);padding-right:14px}
.banner .word small{font-size:12px;font-weight:600;letter-spacing:0;color:var(--fg);margin-top:6px}
.banner .why{flex:1}.banner .headline{font-size:16px;font-weight:600;margin:0 0 6px}
.banner ul{list-style:none;margin:0;padding:0}.banner li{margin:3px 0}
.banner li ul{margin:2px 0 4px 18px;list-style:disc}.banner li li{margin:1px 0}
.banner .figures{margin:8px 0 0;color:var(--muted);font-variant-numeric:tabular-nums}
.banner .figures b{color:var(--fg)}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:108px}
.card .value{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
.card .label{color:var(--muted);font-size:12px}
.card.bad{border-color:#feb2b2;background:var(--badbg)}
.card.sim{border-style:dashed}
table{border-collapse:collapse;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;background:var(--panel)}
.num{text-align:right}
.source{color:var(--muted);font-size:12px}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600;white-space:nowrap}
.badge.ok{color:var(--ok);background:var(--okbg)}.badge.bad{color:var(--bad);background:var(--badbg)}
.badge.warn{color:var(--warn);background:var(--warnbg)}.badge.muted{color:var(--muted);background:var(--panel)}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:18px;margin:8px 0 14px}
figure.chart-box{margin:0;border:1px solid var(--line);border-radius:6px;padding:10px 12px;background:#fff}
figcaption{font-weight:600;margin-bottom:6px}
svg.chart{display:block;width:100%;height:auto}
svg.chart .grid line{stroke:#e2e8f0;stroke-width:1}
svg.chart .frame{stroke:#a0aec0;stroke-width:1}
svg.chart text{font:11px system-ui,sans-serif;fill:#4a5568}
svg.chart text.axis{font-size:12px;fill:#2d3748}
svg.chart text.empty{font-size:14px;fill:#a0aec0}
svg.chart text.guide-label{font-size:11px;font-weight:600;paint-order:stroke;stroke:#fff;stroke-width:3px}
svg.chart text.band-label{font-size:11px;font-weight:600;fill:#4a5568}
svg.chart text.row-label{font-size:12px;fill:#2d3748}
svg.chart text.row-note{font-size:11px;fill:#4a5568}
svg.chart .hover rect:hover{fill:#1a202c;fill-opacity:.06}
.chart-note{margin:4px 0 0;color:var(--muted);font-size:12px}
.knee{font-size:16px;margin:8px 0 4px}
.legend{list-style:none;margin:6px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px}
.legend li{display:flex;align-items:center}
svg.swatch{flex:none;margin-right:6px}
.cols{display:flex;flex-wrap:wrap;gap:28px}
ul.notes,ul.checks{padding-left:18px}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
footer{margin-top:40px;color:var(--muted);font-size:12px}
@media print{.charts{display:block}figure.chart-box{break-inside:avoid;margin-bottom:12px}
.banner,.badge,.card{print-color-adjust:exact;-webkit-print-color-adjust:exact}}
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
    simulated = f" {_badge('simulated', 'warn')}" if target.embedded_simulator else ""
    parts = [
        f"<header><h1>stressor report: {_e(_or_unknown(profile.name))}</h1>",
        f'<p class="meta">profile file {_e(_or_unknown(profile.source))} · target {_e(_or_unknown(target.kind))} '
        f"against {_e(where)}{simulated}</p>",
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


@dataclass(frozen=True, slots=True)
class Fact:
    """One line of the verdict banner: its tone (ok, bad, warn, muted), what it is about, and what it says."""

    tone: str
    topic: str
    said: str
    items: tuple[str, ...] = ()  # what it lists: the failed thresholds


_MOST_NAMED = 4  # failing thresholds or scenarios named in the banner; the tables below have them all


def _named(names: Sequence[str]) -> str:
    more = f" and {len(names) - _MOST_NAMED} more" if len(names) > _MOST_NAMED else ""
    return ", ".join(names[:_MOST_NAMED]) + more


def verdict_facts(results: Results, verdicts: Sequence[Verdict]) -> tuple[str, str, list[Fact]]:
    """The banner's word (PASS, FAIL, INCOMPLETE, NOT GATED), its tone, and the facts behind it: thresholds,
    scenario verdicts, unknown runs, how the run ended, whether the generator kept up, and the simulator."""
    facts: list[Fact] = []
    failed = [v for v in verdicts if not v.passed]
    if failed:
        more = f" (and {len(failed) - _MOST_NAMED} more below)" if len(failed) > _MOST_NAMED else ""
        items = tuple(v.sentence for v in failed[:_MOST_NAMED])
        facts.append(Fact("bad", "thresholds", f"{len(failed)} of {len(verdicts)} failed{more}:", items))
    elif verdicts:
        facts.append(Fact("ok", "thresholds", f"all {len(verdicts)} passed"))
    else:
        facts.append(Fact("muted", "thresholds", "none set (give -t 'failure_rate < 1%', or the profile's thresholds)"))
    summary, by_status = results.scenario_verdicts, _scenarios_by_status(results)
    if summary is not None:
        counts = [f"{summary.passed or 0} passed"]
        if summary.failed:
            counts.append(f"{summary.failed} FAILED ({_named(by_status.get('failed', []))})")
        if summary.undecided:
            counts.append(f"{summary.undecided} undecided ({_named(by_status.get('undecided', []))})")
        tone = "bad" if summary.failed else "warn" if summary.undecided else "ok"
        facts.append(Fact(tone, "scenarios", "against their expected outcome: " + ", ".join(counts)))
    unknown = results.runs.unknown or 0
    if unknown:
        facts.append(
            Fact(
                "warn",
                "unknown runs",
                f"{unknown}: stressor could not tell whether they exist or how they ended; the figures leave them out",
            )
        )
    if results.interrupted:
        facts.append(Fact("warn", "ended", "interrupted: the figures cover what was gathered until then"))
    elif results.limits.breaker:
        facts.append(Fact("bad", "ended", f"stopped by the breaker: {results.limits.breaker}"))
    elif results.stop_reason:
        facts.append(Fact("warn", "ended", f"stopped early: {results.stop_reason}"))
    else:
        facts.append(Fact("ok", "ended", "ran its whole plan"))
    if results.generator.behind:
        facts.append(Fact("warn", "generator", "fell behind its schedule: less load was offered than planned"))
    if results.target.embedded_simulator:
        facts.append(
            Fact("muted", "target", "the embedded simulator: every figure, and the cost, is simulated, not the API's")
        )
    tones = {fact.tone for fact in facts if fact.topic != "target"}
    judged = bool(verdicts) or summary is not None
    if "bad" in tones:
        return "FAIL", "bad", facts
    if unknown or results.interrupted or results.stop_reason:
        return "INCOMPLETE", "warn", facts
    if not judged:
        return "NOT GATED", "muted", facts
    return ("PASS", "warn" if "warn" in tones else "ok", facts)


def _scenarios_by_status(results: Results) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, piece in results.scenarios.items():
        if piece.verdict is not None:
            found.setdefault(piece.verdict.status or "undecided", []).append(name)
    return found


_WORD_NOTES = MappingProxyType(
    {
        "FAIL": "a threshold failed, a scenario missed its expected outcome, or the breaker stopped the run",
        "INCOMPLETE": "the run did not cover its plan, or some runs are unknown",
        "NOT GATED": "no threshold and no expected outcome: nothing was judged",
        "PASS": "every threshold and expected outcome held",
    }
)


_WHY_FAILED = MappingProxyType(
    {
        "thresholds": "a threshold failed",
        "scenarios": "a scenario missed its expected outcome",
        "ended": "the breaker stopped the run",
    }
)


def _word_note(word: str, facts: Sequence[Fact]) -> str:
    """What the banner's word means; for FAIL, what failed (the facts in red)."""
    if word != "FAIL":
        return _WORD_NOTES[word]
    said = [_WHY_FAILED[f.topic] for f in facts if f.tone == "bad" and f.topic in _WHY_FAILED]
    return " and ".join(said) if said else _WORD_NOTES[word]


def _banner(results: Results, verdicts: Sequence[Verdict]) -> str:
    word, tone, facts = verdict_facts(results, verdicts)
    runs, load = results.runs, results.load
    q2c = results.measures.get("queue_to_completion", MeasureFigures())
    ended = runs.settled
    figures = [
        f"<b>{_e(runs.submitted or 0)}</b> runs submitted, <b>{_e(ended)}</b> settled",
        f"failure rate <b>{_e(_share(results.failure_rate))}</b>",
        f"queue-to-completion p95 <b>{_e(_seconds(q2c.p95))}</b>, p99 <b>{_e(_seconds(q2c.p99))}</b>",
    ]
    if load.achieved_runs_per_s is not None:
        offered = load.offered_runs_per_s
        of = f" of {format_rate(offered)} offered" if offered is not None else ""
        figures.append(f"<b>{_e(format_rate(load.achieved_runs_per_s))}</b> achieved{_e(of)}")
    lines = "".join(
        f'<li data-fact="{_e(f.topic)}">{_badge(f.topic, f.tone)} {_e(f.said)}'
        + ("<ul>" + "".join(f"<li><code>{_e(item)}</code></li>" for item in f.items) + "</ul>" if f.items else "")
        + "</li>"
        for f in facts
    )
    return (
        f'<section id="verdict" class="banner {tone}" data-verdict="{_e(word)}">'
        f'<div class="word">{_e(word)}<small>{_e(_word_note(word, facts))}</small></div>'
        f'<div class="why"><ul>{lines}</ul><p class="figures">{" · ".join(figures)}</p></div></section>'
    )


def _summary(results: Results) -> str:
    runs, load = results.runs, results.load
    not_started = sum((runs.not_started or {}).values())
    offered, achieved = load.offered_runs_per_s, load.achieved_runs_per_s
    per_run, cost = load.requests_per_ended_run, results.estimated_cost_cents
    counts = {k: getattr(runs, k) or 0 for k in ("planned", "submitted", "completed", "failed", "errored", "rejected")}
    simulated = bool(results.target.embedded_simulator)
    # Against the simulator the cost is its own price list's: a bill-like figure there would mislead.
    cost_label = "simulated cost (the simulator's estimate, not a bill)" if simulated else "estimated cost"
    cells: list[tuple[str, object]] = [
        *counts.items(),
        ("open at the end", runs.open or 0),
        ("not started", not_started),
        ("failure rate", _share(results.failure_rate)),
        ("offered", "-" if offered is None else format_rate(offered)),
        ("achieved", "-" if achieved is None else format_rate(achieved)),
        ("HTTP requests", sum((results.requests or {}).values())),
        ("requests per ended run", "-" if per_run is None else f"{per_run:.2g}"),
        (cost_label, "-" if cost is None else f"{cost / 100:.2f} USD" + (" (simulated)" if simulated else "")),
    ]
    if runs.unknown:
        cells.insert(6, ("unknown", runs.unknown))
    bad = [k for k in ("failed", "errored", "rejected", "unknown") if getattr(runs, k)]
    bad += ["not started"] if not_started else []
    bad += ["open at the end"] if runs.open else []
    causes = ", ".join(f"{cause} {count}" for cause, count in sorted((runs.not_started or {}).items()))
    note = f'<p class="meta">not started: {_e(causes)}</p>' if causes else ""
    return (
        f'<section id="summary"><h2>Runs</h2>{_cards(cells, bad, simulated=[cost_label] if simulated else [])}'
        f"{note}</section>"
    )


def whole_intervals(results: Results) -> Sequence[IntervalFigures]:
    """The intervals without the sliver a run usually ends with (2.0 s .. 2.0007 s): its counts are near zero
    and its rates a division by almost nothing, which would draw a cliff at the end of every chart."""
    intervals = results.intervals
    interval_s = results.interval_s or 1.0
    whole = [i for i in intervals if _end(i) - (i.start or 0.0) >= _SLIVER * interval_s]
    return whole or intervals


def _time_charts(results: Results, verdicts: Sequence[Verdict]) -> str:
    intervals = whole_intervals(results)
    bands = stage_bands(results.stages)
    charts = [
        latency_chart(intervals, bands, verdicts),
        runs_chart(intervals, bands),
        outcomes_chart(intervals, bands),
        _load_chart(results, intervals, bands, verdicts),
        failure_chart(intervals, bands, verdicts),
        spectrum_chart(results, verdicts),
    ]
    interval_s = results.interval_s
    every = f" (every {_seconds(interval_s)})" if interval_s else ""
    note = (
        f'<p class="meta">Shaded: the plan\'s stages ({_e(", ".join(b.label for b in bands))}). Dashed lines: the '
        "thresholds, on the whole run. Point at a chart to read its values.</p>"
        if bands
        else '<p class="meta">Point at a chart to read its values.</p>'
    )
    return (
        f'<section id="charts"><h2>Over time{_e(every)}</h2>{note}<div class="charts">{"".join(charts)}</div></section>'
    )


def _slices_section(results: Results, kind: str, verdicts: Sequence[Verdict]) -> str:
    pieces = results.slices(kind)
    if not pieces:
        return ""
    key = f"{kind}s"
    table = _slices_table(kind, pieces, results.grades.threshold)
    if len(pieces) < 2:  # one variant (the default) or one scenario: its charts would repeat the whole run's
        return f'<section id="{key}"><h2>By {kind}</h2>{table}</section>'
    charts = _slice_latency_chart(kind, pieces, verdicts) + _slice_outcomes_chart(kind, pieces)
    return f'<section id="{key}"><h2>By {kind}</h2><div class="charts">{charts}</div>{table}</section>'


def render_html(
    results: Results,
    verdicts: Sequence[Verdict] | None = None,
    comparison: Comparison | None = None,
) -> str:
    """The whole report as one HTML page: no network, no script; every document string escaped."""
    verdicts = tuple(verdicts or ())
    records = results.run_records
    body = [_header(results), _banner(results, verdicts), _summary(results), _time_charts(results, verdicts)]
    if verdicts:
        body.append(_verdicts_section(verdicts))
    body.append(_scenario_verdicts_section(results))
    body.append(f'<section id="measures"><h2>Measures</h2>{_measures_table(results.measures)}</section>')
    if comparison is not None:
        body.append(_comparison_section(comparison))
    body.append(_grades_section(results))
    stages = results.stages or ()
    if records or stages:
        table = _stages_table(records, stages)
        body.append(f'<section id="stages"><h2>By stage</h2>{table}</section>')
    body.append(_slices_section(results, "variant", verdicts))
    body.append(_variant_comparison_section(results))
    body.append(_slices_section(results, "scenario", verdicts))
    body.append(_limits_section(results))
    body.append(f"<footer>{_e(_or_unknown(results.schema))} · written by stressor</footer>")
    title = f"stressor: {_or_unknown(results.profile.name)} ({_when(results.started_at)})"
    return page(title, "".join(body))


def page(title: str, body: str) -> str:
    """A whole self-contained page: the policy that forbids fetching and scripts, the styles, the body."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
