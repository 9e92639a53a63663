"""The HTML report: one self-contained page that parses, with every chart drawn and every string escaped."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser

from test_report_fixture import load_fixture

from stressor.report.compare import compare
from stressor.report.html import render_html
from stressor.report.thresholds import evaluate, parse_thresholds

CHARTS = ("latency", "runs", "load", "failures", "spectrum")
VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}
SVG_VOID = {"polyline", "line", "circle", "rect", "path"}


class Page(HTMLParser):
    """Collects elements (with their enclosing chart) and checks every tag is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None], str | None]] = []
        self.text: list[str] = []
        self.chart: str | None = None
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "svg":
            self.chart = attributes.get("data-chart")
        self.elements.append((tag, attributes, self.chart))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs), self.chart))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        if tag == "svg":
            self.chart = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    return parser


def _report() -> str:
    doc = load_fixture()
    verdicts = evaluate(parse_thresholds(["failure_rate < 25%", "queue_to_completion.p99 < 50ms"]), doc)
    new = copy.deepcopy(doc)
    new["failure_rate"] += 0.05
    return render_html(new, verdicts, compare(doc, new))


def test_the_page_parses_and_holds_every_chart_with_data() -> None:
    page = _parse(_report())
    charts = [attrs.get("data-chart") for tag, attrs, _ in page.elements if tag == "svg"]
    assert charts == list(CHARTS)
    for chart in CHARTS:
        polylines = [attrs for tag, attrs, within in page.elements if tag == "polyline" and within == chart]
        assert polylines, chart
        points = [p for attrs in polylines for p in (attrs.get("points") or "").split()]
        assert len(points) >= 2, chart
        for point in points:
            x, y = map(float, point.split(","))
            assert 0 <= x <= 720 and 0 <= y <= 260, (chart, point)


def test_latency_chart_draws_the_three_percentiles_per_interval() -> None:
    page = _parse(_report())
    groups = [attrs.get("data-series") for tag, attrs, within in page.elements if tag == "g" and within == "latency"]
    assert [g for g in groups if g] == ["p50", "p90", "p99"]
    doc = load_fixture()
    whole = [i for i in doc["intervals"] if i["end"] - i["start"] >= 0.05]  # the closing sliver is left out
    circles = [a for tag, a, within in page.elements if tag == "circle" and within == "latency"]
    assert len(circles) == 3 * sum(1 for i in whole if i["queue_to_completion"]["count"])


def test_spectrum_has_a_log_percentile_axis() -> None:
    page = _parse(_report())
    text = " ".join(page.text)
    assert "0%" in text and "90%" in text and "99%" in text


def test_the_page_shows_the_figures_tables_verdicts_and_comparison() -> None:
    page = _report()
    for section in ("summary", "thresholds", "measures", "charts", "comparison", "grades", "stages", "variants"):
        assert f'<section id="{section}">' in page, section
    assert "<h2>Thresholds: 1 of 2 passed</h2>" in page
    assert "was 82.6ms, 65.2% over 50ms" in page
    assert "REGRESSED" in page
    assert "client: run due (plan) -&gt; client saw it end" in page  # the measure's source, escaped
    assert "<h2>By scenario</h2>" in page and ">refund<" in page


def test_the_page_is_self_contained() -> None:
    page = _report()
    assert "<script" not in page
    assert not re.search(r"""\b(?:src|href)\s*=""", page)
    assert "@import" not in page and "url(" not in page
    # The only URL is the SVG namespace, which is a name, never fetched.
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "Content-Security-Policy" in page


def test_every_string_from_the_document_is_escaped() -> None:
    doc = load_fixture()
    evil = '<script>alert("x")</script>&'
    doc["profile"]["name"] = evil
    doc["stop_reason"] = evil
    doc["scenarios"][evil] = doc["scenarios"].pop("refund")
    doc["variants"][evil] = doc["variants"].pop("bolt")
    doc["errors"] = {evil: 1}
    doc["measures"]["queue_to_completion"]["source"] = evil
    page = render_html(doc)
    assert "<script" not in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;") >= 6
    _parse(page)


def test_a_sparse_document_still_renders_every_chart() -> None:
    doc = load_fixture()
    for key in ("intervals", "run_records", "variants", "scenarios", "webhooks"):
        doc.pop(key)
    doc["measures"]["queue_to_completion"].update(count=0, hdr=None, p50=None, p90=None, p99=None, max=None)
    page = _parse(render_html(doc))
    assert [a.get("data-chart") for tag, a, _ in page.elements if tag == "svg"] == list(CHARTS)
    assert " ".join(page.text).count("no data for this chart") == len(CHARTS)


def test_notes_for_interrupted_and_late_runs() -> None:
    doc = load_fixture()
    doc["interrupted"] = True
    doc["generator"]["behind"] = True
    doc["limits"]["breaker"] = "more than half of the requests failed over 30s"
    page = render_html(doc)
    assert "Interrupted: the figures cover what was gathered until then." in page
    assert "The generator fell behind its schedule" in page
    assert "Breaker: more than half of the requests failed over 30s" in page
