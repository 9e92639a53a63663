"""The SVG builders of the HTML report, on their own: axes that fit the data, stage bands and threshold lines at
the right coordinates, a tooltip on every point and bar, a swatch for every legend entry."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

from stressor.document import (
    ComparedMeasure,
    IntervalFigures,
    IntervalLatency,
    IntervalRuns,
    SampleFigures,
    VariantDifference,
)
from stressor.report.charts import (
    BAND_STRIP,
    BOTTOM,
    HEIGHT,
    LEFT,
    RIGHT,
    TOP,
    WIDTH,
    Axis,
    Band,
    Key,
    Mark,
    Row,
    Series,
    line_chart,
    nice_range,
    nice_ticks,
    rows_chart,
)
from stressor.report.html import _difference_chart, failure_chart, latency_chart, runs_chart, stage_bands
from stressor.thresholds import Status, Verdict, parse_thresholds

SVG = "{http://www.w3.org/2000/svg}"
PLOT_W = WIDTH - LEFT - RIGHT


def _figure(markup: str) -> ET.Element:
    """The chart's ``<figure>`` as XML (the builders write well-formed markup)."""
    return ET.fromstring(markup)


def _chart(markup: str) -> ET.Element:
    svg = _figure(markup).find(f"{SVG}svg")
    assert svg is not None
    return svg


def _ticks(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text") if t.get("class") == "tick"]


def _interval(end: float, **runs: int) -> IntervalFigures:
    return IntervalFigures(
        start=end - 1.0,
        end=end,
        runs=IntervalRuns(**runs),
        requests_per_s=1.0,
        queue_to_completion=IntervalLatency(count=10, p50=0.05, p90=0.08, p99=0.1),
    )


def test_nice_ticks_reach_just_past_the_data() -> None:
    assert nice_ticks(0.062) == [0.0, 0.02, 0.04, 0.06, 0.08]
    assert nice_ticks(3, whole=True) == [0.0, 1.0, 2.0, 3.0]
    assert nice_ticks(0.4, whole=True) == [0.0, 1.0]  # runs: no tick at half a run
    ticks = nice_range(-3.4, 16)
    assert ticks[0] <= -3.4 and ticks[-1] >= 16 and 0.0 in ticks and ticks[-1] < 32


def test_the_failure_panel_fits_its_axis_to_the_data() -> None:
    # 1, 3 and 2 failed of 50: 2 %, 6 %, 4 %. The axis tops at 6 %, not at 100 % where they would be a flat line.
    intervals = [_interval(k + 1.0, completed=50 - f, failed=f) for k, f in enumerate((1, 3, 2))]
    svg = _chart(failure_chart(intervals))
    ticks = _ticks(svg)
    y_ticks = ticks[: ticks.index("0", 1)] if "0" in ticks[1:] else ticks
    assert y_ticks[0] == "0%" and y_ticks[-1] == "6%", ticks
    points = [
        tuple(map(float, p.split(",")))
        for line in svg.iter(f"{SVG}polyline")
        for p in (line.get("points") or "").split()
    ]
    plot_h = HEIGHT - TOP - BOTTOM
    assert [round(y, 1) for _, y in points] == [round(TOP + plot_h * (1 - r / 0.06), 1) for r in (0.02, 0.06, 0.04)]


def test_no_failure_at_all_lies_on_a_short_axis() -> None:
    svg = _chart(failure_chart([_interval(k + 1.0, completed=10, failed=0) for k in range(3)]))
    assert "1%" in _ticks(svg) and "100%" not in _ticks(svg)


def test_stage_bands_span_their_stages_and_carry_their_names() -> None:
    bands = (Band("warm-up", 0.0, 1.0, "2 batches/s"), Band("peak <2>", 1.0, 3.0))
    svg = _chart(
        line_chart(
            "c", "c", [Series("s", "#000", ((1.0, 1.0), (2.0, 2.0), (3.0, 1.0)))], Axis("t", str), Axis("v", str),
            bands=bands,
        )
    )  # fmt: skip
    groups = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "band"]
    assert [g.get("data-band") for g in groups] == ["warm-up", "peak <2>"]
    # x ticks 0, 1, 2, 3: stage 1 covers a third of the plot, stage 2 the rest
    rects = [g.find(f"{SVG}rect") for g in groups]
    assert [(float(r.get("x", "")), float(r.get("width", ""))) for r in rects if r is not None] == [
        (LEFT, round(PLOT_W / 3, 1)),
        (round(LEFT + PLOT_W / 3, 1), round(PLOT_W * 2 / 3, 1)),
    ]
    assert all(r is not None and float(r.get("y", "")) == TOP + BAND_STRIP for r in rects)  # under the name strip
    labels = [t.text for g in groups for t in g.iter(f"{SVG}text")]
    assert labels == ["warm-up", "peak <2>"]
    assert groups[0].findtext(f"{SVG}title") == "stage warm-up\n2 batches/s"


def test_stage_bands_come_from_the_plan() -> None:
    from stressor.document import Stage, StageTarget

    stages = (
        Stage("warm-up", 0.0, 4.0, "open", StageTarget(1, 1, "batches/s"), 6),
        Stage(None, 4.0, 6.0, "pause", None),
    )
    assert [(b.label, b.start, b.end, b.detail) for b in stage_bands(stages)] == [
        ("warm-up", 0.0, 4.0, "1 batches/s x 6 runs"),
        ("stage 1", 4.0, 6.0, "pause"),
    ]


def _verdict(text: str, status: Status, actual: float | None, detail: str) -> Verdict:
    (threshold,) = parse_thresholds([text])
    return Verdict(threshold, status, actual, detail)


def test_a_threshold_is_a_line_at_its_limit_coloured_and_labelled_by_its_verdict() -> None:
    intervals = [_interval(k + 1.0, completed=10) for k in range(4)]
    failed = _verdict("queue_to_completion.p95 < 80ms", Status.FAILED, 0.095, "was 95ms, 18.8% over 80ms")
    passed = _verdict("queue_to_completion.p99 < 150ms", Status.PASSED, 0.1, "was 100ms")
    scoped = _verdict("variant[a].queue_to_completion.p99 < 1ms", Status.FAILED, 0.1, "was 100ms")
    other = _verdict("failure_rate < 5%", Status.PASSED, 0.0, "was 0%")
    svg = _chart(latency_chart(intervals, (), [failed, passed, scoped, other]))
    guides = [g for g in svg.iter(f"{SVG}g") if g.get("data-guide") == "threshold"]
    assert len(guides) == 2  # the whole run's latency thresholds only
    # data up to 100 ms, the 150 ms bound widens the axis: ticks 0 .. 150 ms
    plot_h = HEIGHT - TOP - BOTTOM
    lines = [g.find(f"{SVG}line") for g in guides]
    ys = [float(line.get("y1", "")) for line in lines if line is not None]
    assert ys == [round(TOP + plot_h * (1 - 0.08 / 0.15), 1), round(TOP + plot_h * (1 - 0.15 / 0.15), 1)]
    labels = [g.find(f"{SVG}text") for g in guides]
    assert [t.text for t in labels if t is not None] == [
        "queue_to_completion.p95 < 80ms: FAILED",
        "queue_to_completion.p99 < 150ms: passed",
    ]
    assert [line.get("stroke") for line in lines if line is not None] == ["#c53030", "#2f855a"]
    assert [t.get("style") for t in labels if t is not None] == ["fill:#c53030", "fill:#2f855a"]
    # Each label inside the plot: above its line, but below the one at the top of the axis (above it, it would
    # cover the stage names)
    assert [float(t.get("y", "")) for t in labels if t is not None] == [ys[0] - 4, ys[1] + 13]


def test_a_bound_far_above_the_data_is_named_above_the_plot_and_the_axis_keeps_to_the_data() -> None:
    intervals = [_interval(k + 1.0, completed=10) for k in range(4)]
    far = _verdict("queue_to_completion.p95 < 90s", Status.PASSED, 0.09, "was 90ms")
    svg = _chart(latency_chart(intervals, (), [far]))
    assert _ticks(svg)[:6] == ["0", "20ms", "40ms", "60ms", "80ms", "100ms"]
    [guide] = [g for g in svg.iter(f"{SVG}g") if g.get("data-guide") == "threshold"]
    assert "off-scale" in (guide.get("class") or "")
    assert "(at 1m30.0s, above the scale)" in (guide.findtext(f"{SVG}text") or "")


def test_every_x_has_a_tooltip_with_every_series_value_there() -> None:
    series = [
        Series("p50", "#111", ((1.0, 0.05), (2.0, None), (3.0, 0.07))),
        Series("p99", "#222", ((1.0, 0.1), (2.0, 0.2), (3.0, 0.3))),
    ]
    axis = Axis("seconds", lambda v: f"{v:g}", point=lambda v: f"at {v:g}s")
    markup = line_chart("c", "c", series, axis, Axis("v", lambda v: f"{v * 1000:g}ms"), bands=[Band("peak", 0, 3)])
    hover = [g for g in _chart(markup).iter(f"{SVG}g") if g.get("class") == "hover"]
    assert len(hover) == 1
    titles = [r.findtext(f"{SVG}title") for r in hover[0].iter(f"{SVG}rect")]
    assert titles == [
        "at 1s · stage peak\np50: 50ms\np99: 100ms",
        "at 2s · stage peak\np50: no data\np99: 200ms",
        "at 3s · stage peak\np50: 70ms\np99: 300ms",
    ]
    # the columns tile the plot: each reaches the midpoint to its neighbour
    rects = list(hover[0].iter(f"{SVG}rect"))
    edges = [(float(r.get("x", "")), float(r.get("x", "")) + float(r.get("width", ""))) for r in rects]
    assert edges[0][0] == LEFT and abs(edges[-1][1] - (LEFT + PLOT_W)) < 0.2
    assert all(abs(a[1] - b[0]) < 0.2 for a, b in itertools.pairwise(edges))


def test_every_legend_entry_has_its_swatch() -> None:
    intervals = [_interval(k + 1.0, completed=10, failed=1) for k in range(4)]
    failed = _verdict("failure_rate < 5%", Status.FAILED, 0.09, "was 9.09%")
    bands = (Band("warm-up", 0.0, 2.0), Band("peak", 2.0, 4.0))
    for markup in (failure_chart(intervals, bands, [failed]), runs_chart(intervals, bands)):
        items = list(_figure(markup).iter("li"))
        assert len(items) >= 2
        for item in items:
            swatch = item.find("svg")
            assert swatch is not None and swatch.get("class") == "swatch", ET.tostring(item)
            colours = re.findall(r'(?:stroke|fill)="(#[0-9a-f]{6})"', ET.tostring(swatch, encoding="unicode"))
            assert colours, ET.tostring(item)


def test_the_runs_chart_stacks_the_runs_in_flight_by_state() -> None:
    # queued 2, in progress 3, created 6 (so 1 ended but not yet seen), in flight 8 (so 2 not yet answered)
    intervals = [_interval(k + 1.0, queued=2, in_progress=3, open=6, in_flight=8, completed=1) for k in range(3)]
    svg = _chart(runs_chart(intervals))
    tops = {}
    for group in svg.iter(f"{SVG}g"):
        if group.get("class") == "series":
            edge = group.find(f"{SVG}polyline")
            assert edge is not None
            tops[group.get("data-series")] = {float(p.split(",")[1]) for p in (edge.get("points") or "").split()}
    plot_h, top = HEIGHT - TOP - BOTTOM, 8.0  # the y ticks go 0, 2 .. 8
    assert _ticks(svg)[:5] == ["0", "2", "4", "6", "8"]
    expected = {
        "queued (server)": 2,
        "in progress (server)": 5,
        "ended, not yet seen by the client": 6,
        "create sent, not yet answered": 8,
    }
    for name, level in expected.items():
        assert tops[name] == {round(TOP + plot_h * (1 - level / top), 1)}, (name, tops[name])


def test_without_the_server_s_stamps_the_runs_chart_does_not_guess_where_created_runs_are() -> None:
    # The live dashboard's intervals: the client's counts only (6 created, 8 in flight), no queued or in progress
    intervals = [_interval(k + 1.0, open=6, in_flight=8, completed=1) for k in range(3)]
    svg = _chart(runs_chart(intervals))
    series = [g.get("data-series") for g in svg.iter(f"{SVG}g") if g.get("class") == "series"]
    assert series == ["created, not yet seen to end", "create sent, not yet answered"]


def test_rows_chart_bars_sit_end_to_end_each_with_its_title() -> None:
    rows = [
        Row("a", (Mark("completed", "#0a0", 0, 6, title="a: 6 completed"), Mark("failed", "#a00", 6, 8, title="x"))),
        Row("b", (Mark("completed", "#0a0", 0, 4, title="b: 4 completed"),), note="FAILED", tone="bad"),
    ]
    svg = _chart(rows_chart("o", "o", rows, Axis("runs", lambda v: f"{v:g}", whole=True), [Key("completed", "#0a0")]))
    bars = [r for r in svg.iter(f"{SVG}rect") if r.get("data-key")]
    assert [r.findtext(f"{SVG}title") for r in bars] == ["a: 6 completed", "x", "b: 4 completed"]
    lefts = [float(r.get("x", "")) for r in bars]
    widths = [float(r.get("width", "")) for r in bars]
    assert abs(lefts[0] + widths[0] - lefts[1]) < 0.2  # failed starts where completed ends
    assert abs(widths[0] / widths[2] - 6 / 4) < 0.01
    labels = {t.text: t.get("style") for t in svg.iter(f"{SVG}text") if t.get("class") == "row-label"}
    assert labels == {"a": None, "b": "fill:#9b2c2c"}


def test_the_difference_chart_draws_each_interval_around_zero() -> None:
    measure = ComparedMeasure(
        unit="s",
        variants={"spark": SampleFigures(count=80), "bolt": SampleFigures(count=78)},
        differences={
            "bolt": {
                "p50": VariantDifference(estimate=0.01, low=0.002, high=0.018, significant=True),
                "p90": VariantDifference(estimate=0.004, low=-0.009, high=0.021, significant=False),
            }
        },
    )
    svg = _chart(_difference_chart("queue_to_completion", measure, "spark"))
    rows = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "row"]
    assert [g.get("data-row") for g in rows] == ["bolt at p50", "bolt at p90"]
    [zero] = [g for g in svg.iter(f"{SVG}g") if g.get("data-guide") == "zero"]
    zero_x = float(zero.find(f"{SVG}line").get("x1", ""))  # type: ignore[union-attr]
    dots = [c for g in rows for c in g.iter(f"{SVG}circle")]
    assert all(float(c.get("cx", "")) > zero_x for c in dots)  # both estimates are slower than the reference
    spans = [s for g in rows for s in g.iter(f"{SVG}g") if s.get("data-key") == "interval"]
    first = next(float(line.get("x1", "")) for line in spans[1].iter(f"{SVG}line"))
    assert first < zero_x  # the p90 interval reaches below 0: not significant
    assert "+10ms [2ms, 18ms], significant" in (spans[0].findtext(f"{SVG}title") or "")
