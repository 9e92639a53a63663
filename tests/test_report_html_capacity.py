"""The capacity page: the knee stated and marked on every chart, the SLO bounds drawn, p95 visible over p99."""

from __future__ import annotations

import re

from test_report_html import _parse, _points

from stressor.report.capacity_html import render_capacity_html
from stressor.thresholds import parse_thresholds

SLOS = parse_thresholds(["queue_to_completion.p95 < 2s", "failure_rate < 5%"])
CHARTS = ("capacity-throughput", "capacity-latency", "capacity-failures")


def step(level: float, p95: float, failure_rate: float, held: bool) -> dict:
    return {
        "level": level,
        "p50": p95 / 2,
        "p95": p95,
        "p99": p95,  # few runs a step: p95 and p99 are the same run, and must both show
        "failure_rate": failure_rate,
        "completed_per_s": level * 2.5,
        "held": held,
        "broken": [] if held else ["queue_to_completion.p95 was 3s"],
    }


STEPS = [step(2, 0.4, 0.0, True), step(4, 0.6, 0.0, True), step(6, 1.2, 0.01, True), step(8, 3.0, 0.2, False)]


def _guides(page_text: str) -> dict[str, list[str]]:
    """Each chart's guide names, in order."""
    found: dict[str, list[str]] = {}
    for chart, svg in re.findall(r'<svg class="chart" data-chart="([^"]+)"(.*?)</svg>', page_text, re.S):
        found[chart] = re.findall(r'data-guide="([^"]+)"', svg)
    return found


def _frame_y(value: float, top: float) -> float:
    """Where the chart code puts ``value`` on a y axis whose top tick is ``top`` (plot 14 .. 218 px)."""
    return 14 + 204 - value / top * 204


def test_the_page_states_the_knee_and_the_slo() -> None:
    page = render_capacity_html("Capacity of tiny", "runs in flight", STEPS, SLOS)
    _parse(page)
    assert '<p class="knee" id="knee"><strong>Knee: held at 6, broke at 8 runs in flight.</strong></p>' in page
    assert "SLO: queue_to_completion.p95 &lt; 2s, failure_rate &lt; 5%" in page


def test_every_chart_marks_the_knee_between_the_last_held_and_the_first_broken_step() -> None:
    page = render_capacity_html("Capacity of tiny", "runs in flight", STEPS, SLOS)
    guides = _guides(page)
    assert list(guides) == list(CHARTS)
    assert guides["capacity-latency"] == ["capacity-knee", "slo"]
    assert guides["capacity-failures"] == ["capacity-knee", "slo"]
    assert guides["capacity-throughput"] == ["capacity-knee"]
    parsed = _parse(page)
    # The band spans x(6) .. x(8) on the latency chart; the steps' points sit at x(2), x(4), x(6), x(8).
    xs = sorted({x for x, _ in _points(parsed, "capacity-latency", "p50")})
    band = [
        a
        for tag, a, within in parsed.elements
        if tag == "rect" and within == "capacity-latency" and a.get("fill-opacity")
    ]
    assert len(band) == 1
    left, width = float(band[0]["x"]), float(band[0]["width"])
    assert abs(left - xs[2]) < 0.2 and abs(left + width - xs[3]) < 0.2


def test_the_slo_bounds_are_drawn_at_their_values() -> None:
    parsed = _parse(render_capacity_html("c", "runs in flight", STEPS, SLOS))
    lines = {within: a for tag, a, within in parsed.elements if tag == "line" and a.get("stroke-dasharray") == "8 4"}
    # Latency ticks go to 3 s (the highest p95): the 2 s bound sits two thirds of the way up.
    assert abs(float(lines["capacity-latency"]["y1"]) - _frame_y(2.0, 3.0)) < 0.2
    # Failure ticks go to 20 %: the 5 % bound a quarter of the way up.
    assert abs(float(lines["capacity-failures"]["y1"]) - _frame_y(0.05, 0.2)) < 0.2


def test_a_bound_above_every_point_widens_the_axis_so_it_shows() -> None:
    calm = [step(2, 0.4, 0.0, True), step(4, 0.5, 0.0, True)]
    parsed = _parse(
        render_capacity_html("c", "runs in flight", calm, parse_thresholds(["queue_to_completion.p95 < 2s"]))
    )
    [bound] = [a for tag, a, within in parsed.elements if tag == "line" and a.get("stroke-dasharray") == "8 4"]
    assert float(bound["y1"]) >= 14  # inside the plot, not clamped off its top
    assert abs(float(bound["y1"]) - _frame_y(2.0, 2.0)) < 0.2


def test_p95_is_drawn_over_p99_and_dashed() -> None:
    page = render_capacity_html("c", "runs in flight", STEPS, SLOS)
    latency = page[page.index('data-chart="capacity-latency"') : page.index('data-chart="capacity-failures"')]
    order = re.findall(r'data-series="(p\d+)"', latency)
    assert order == ["p50", "p99", "p95"]
    p95 = latency[latency.index('data-series="p95"') :]
    assert 'stroke-dasharray="6 4"' in p95[: p95.index("</g>")]
    parsed = _parse(page)
    assert _points(parsed, "capacity-latency", "p95") == _points(parsed, "capacity-latency", "p99")


def test_a_search_that_never_broke_says_so_and_marks_the_last_step() -> None:
    page = render_capacity_html("c", "batches per second", STEPS[:3], SLOS)
    assert "No step broke the SLO: the last held at 6 batches per second." in page
    assert _guides(page)["capacity-throughput"] == ["capacity-knee"]


def test_a_first_step_that_broke() -> None:
    page = render_capacity_html("c", "runs in flight", [step(2, 5.0, 0.5, False)], SLOS)
    assert "Knee: the first step, 2 runs in flight, already broke the SLO." in page


def test_the_banner_says_the_sustained_rate_as_the_sentence_does() -> None:
    held = {**step(8, 0.9, 0.0, True), "runs_per_s": 12.5}
    page = render_capacity_html("c", "runs in flight", [held, step(10, 3.0, 0.0, False)], SLOS)
    assert 'data-verdict="12 runs/s"' in page  # not "12.5 runs/s" beside "Sustains about 12 runs/s"
    assert "Sustains about 12 runs/s (8 runs in flight) with" in page
    slow = {**step(2, 0.9, 0.0, True), "runs_per_s": 0.25}
    assert 'data-verdict="15 runs/min"' in render_capacity_html("c", "runs in flight", [slow], SLOS)
