"""The HTML report: one self-contained page that parses, with every chart drawn and every string escaped."""

from __future__ import annotations

import copy
import html
import re
from html.parser import HTMLParser

from support.documents import results
from test_report_fixture import load_fixture

from stressor.report.charts import HEIGHT, WIDTH
from stressor.report.compare import compare
from stressor.report.html import render_html
from stressor.thresholds import evaluate, parse_thresholds
from stressor.units import format_rate

TIME_CHARTS = ("latency", "runs", "outcomes", "load", "failures", "spectrum")
SLICE_CHARTS = ("variant-latency", "variant-outcomes", "scenario-latency", "scenario-outcomes")
CHARTS = (*TIME_CHARTS, *SLICE_CHARTS)
VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}
SVG_VOID = {"polyline", "polygon", "line", "circle", "rect", "path"}


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
        if tag == "svg" and attributes.get("class") == "chart":
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
        if tag == "svg" and "svg" not in self.stack:
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
    verdicts = evaluate(parse_thresholds(["failure_rate < 25%", "queue_to_completion.p99 < 50ms"]), results(doc))
    new = copy.deepcopy(doc)
    new["failure_rate"] += 0.4  # far past the rule (+1 pt) and the noise of 40 runs: a regression
    return render_html(results(new), verdicts, compare(results(doc), results(new)))


def _charts(page: Page) -> list[str | None]:
    return [
        attrs.get("data-chart") for tag, attrs, _ in page.elements if tag == "svg" and attrs.get("class") == "chart"
    ]


def test_the_page_parses_and_holds_every_chart_with_data() -> None:
    page = _parse(_report())
    assert _charts(page) == list(CHARTS)
    for chart in CHARTS:
        polylines = [attrs for tag, attrs, within in page.elements if tag == "polyline" and within == chart]
        points = [p for attrs in polylines for p in (attrs.get("points") or "").split()]
        bars = [
            a
            for tag, a, within in page.elements
            if tag == "rect" and within == chart and a.get("fill", "").startswith("#")
        ]
        dots = [a for tag, a, within in page.elements if tag == "circle" and within == chart]
        assert len(points) + len(bars) + len(dots) >= 2, chart
        for point in points:
            x, y = map(float, point.split(","))
            assert 0 <= x <= WIDTH and 0 <= y <= HEIGHT, (chart, point)


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
    page = render_html(results(doc))
    assert "<script" not in page
    assert page.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;") >= 6
    _parse(page)


def test_a_sparse_document_still_renders_every_chart() -> None:
    doc = load_fixture()
    for key in ("intervals", "run_records", "variants", "scenarios", "webhooks"):
        doc.pop(key)
    doc["measures"]["queue_to_completion"].update(count=0, hdr=None, p50=None, p90=None, p99=None, max=None)
    page = _parse(render_html(results(doc)))
    assert _charts(page) == list(TIME_CHARTS)  # no variant or scenario: no chart of them
    assert " ".join(page.text).count("no data for this chart") == len(TIME_CHARTS)


def test_notes_for_interrupted_and_late_runs() -> None:
    doc = load_fixture()
    doc["interrupted"] = True
    doc["generator"]["behind"] = True
    doc["limits"]["breaker"] = "more than half of the requests failed over 30s"
    page = render_html(results(doc))
    assert "Interrupted: the figures cover what was gathered until then." in page
    assert "The generator fell behind its schedule" in page
    assert "Breaker: more than half of the requests failed over 30s" in page


def _points(page: Page, chart: str, series: str | None = None) -> list[tuple[float, float]]:
    """Every plotted point of a chart (of one series), in SVG coordinates."""
    found, current = [], None
    for tag, attrs, within in page.elements:
        if within != chart:
            continue
        if tag == "g" and attrs.get("data-series"):
            current = attrs["data-series"]
        if tag == "polyline" and (series is None or current == series):
            found += [tuple(map(float, p.split(","))) for p in (attrs.get("points") or "").split()]
    return found  # type: ignore[return-value]


def _errored_only() -> dict:
    """Four intervals in which every failure is an errored or rejected run: the server failed none."""
    doc = load_fixture()
    doc["interval_s"] = 1.0
    doc["intervals"] = [
        {
            "start": float(k),
            "end": float(k + 1),
            "runs": {
                "queued": 0,
                "in_progress": 1,
                "completed": 8,
                "failed": 0,
                "errored": 2 if k % 2 else 0,
                "rejected": 0 if k % 2 else 2,
                "open": 1,
                "in_flight": 3,
            },
            "requests_per_s": 5.0,
            "throttled_s": 0.0,
            "queue_to_completion": {"count": 8, "max": 0.1, "p50": 0.05, "p90": 0.08, "p99": 0.1},
        }
        for k in range(4)
    ]
    return doc


def test_errored_and_rejected_runs_count_in_the_failure_chart() -> None:
    page = _parse(render_html(results(_errored_only())))
    points = _points(page, "failures")
    assert len(points) == 4
    # 2 of 10 settled in every interval: 20 %, drawn well above the axis (y = 218 is 0 % in the 260 px chart).
    assert all(y < 200 for _, y in points), points
    assert len({y for _, y in points}) == 1
    text = " ".join(page.text)
    assert "failed, errored and rejected / settled in it" in text


def _groups(page: Page, chart: str) -> list[str]:
    return [
        a["data-series"] or ""
        for tag, a, within in page.elements
        if tag == "g" and within == chart and a.get("data-series")
    ]


def test_the_outcomes_chart_stacks_errored_and_rejected_and_the_runs_chart_the_client_s_runs_in_flight() -> None:
    page = _parse(render_html(results(_errored_only())))
    assert _groups(page, "outcomes") == ["completed", "failed", "errored (create failed)", "rejected (429/503)"]
    assert "create sent, not yet answered" in _groups(page, "runs")
    # 8 completed and 2 errored or rejected in each of 4 intervals: 4 bars a series with runs, 0 for "failed"
    bars = [
        a for tag, a, within in page.elements if tag == "rect" and within == "outcomes" and a.get("fill") == "#38a169"
    ]
    assert len(bars) == 4


def test_results_without_errored_counts_still_chart_failed_over_ended() -> None:
    page = _parse(render_html(results(load_fixture())))  # written before intervals counted errored and rejected runs
    assert "create sent, not yet answered" not in _groups(page, "runs")  # no in_flight count: that layer is unknown
    assert not any("errored" in g for g in _groups(page, "outcomes"))
    assert "Failure rate per interval (failed / ended in it)" in " ".join(page.text)
    assert _points(page, "failures")


def _with_stages(doc: dict) -> dict:
    """The fixture with the ``stages`` its run (tests/test_report_fixture.py's profile) writes today."""
    doc["stages"] = [
        {
            "name": "warm-up",
            "start_s": 0.0,
            "end_s": 1.0,
            "model": "open",
            "target": {"start": 3.0, "end": 3.0, "unit": "batches/s"},
            "runs_per_batch": 4,
        },
        {
            "name": "steady",
            "start_s": 1.0,
            "end_s": 2.0,
            "model": "open",
            "target": {"start": 7.0, "end": 7.0, "unit": "batches/s"},
            "runs_per_batch": 4,
        },
        {
            "name": "cool <down>",
            "start_s": 2.0,
            "end_s": 4.0,
            "model": "closed",
            "target": {"start": 10.0, "end": 2.0, "unit": "runs in flight"},
            "runs_per_batch": 1,
        },
    ]
    return doc


def _stage_rows(page: str) -> list[list[str]]:
    section = page[page.index('<section id="stages">') :]
    section = section[: section.index("</section>")]
    rows = re.findall(r"<tr>(.*?)</tr>", section)
    return [[html.unescape(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)] for row in rows]


def test_the_stage_table_names_each_stage_with_its_target_and_rates() -> None:
    doc = _with_stages(load_fixture())
    rows = _stage_rows(render_html(results(doc)))
    header, *body = rows
    assert header[:5] == ["stage", "target", "runs due", "offered", "achieved"]
    names = [row[0] for row in body]
    assert names == ["warm-up", "steady", "cool <down>"]  # escaped in the page, read back here
    assert body[0][1] == "3 batches/s x 4 runs" and body[2][1] == "10 -> 2 runs in flight"
    due = [sum(1 for r in doc["run_records"] if r["stage"] == k) for k in (0, 1)]
    assert [int(row[2]) for row in body[:2]] == due and body[2][2] == "0"
    assert body[0][3] == format_rate(due[0] / 1.0) and body[1][3] == format_rate(due[1] / 1.0)
    created = sum(1 for r in doc["run_records"] if r["stage"] == 1 and r["created_at"] is not None)
    assert body[1][4] == format_rate(created / 1.0)


def test_results_without_stages_number_them() -> None:
    rows = _stage_rows(render_html(results(load_fixture())))
    assert [row[0] for row in rows[1:]] == ["0", "1"]
    assert [row[1] for row in rows[1:]] == ["-", "-"]


def test_the_limits_table_shows_throttling_as_wall_time_and_its_parts_when_known() -> None:
    doc = load_fixture()
    doc["limits"].update(throttle_wait_s=1.5, client_wait_s=0.5, server_rate_wait_s=1.25)
    page = render_html(results(doc))
    assert "<td>held by rate limits (wall time)</td><td>1.5s</td>" in page
    assert "<td>by the client&#x27;s own rates</td><td>500ms</td>" in page
    assert "<td>by the server&#x27;s quota (stated or learned)</td><td>1.25s</td>" in page
    older = render_html(results(load_fixture()))  # results that do not tell the parts apart
    assert "held by rate limits (wall time)" in older and "own rates" not in older
