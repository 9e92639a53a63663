"""The HTML pages as stressor writes them, in a real browser: headless Chromium draws every chart's points.

The pages come from the commands themselves (in this process, on virtual time): a short run against the
embedded simulator, then ``stressor report RESULTS --html``, and ``stressor capacity --html``. The pages run no
script (their Content-Security-Policy forbids it); to read what the browser drew, the test renders a copy with
the policy relaxed for one inline script, which writes into each chart's ``<svg>``: its laid-out size, how many
plotted points (polyline vertices and dots) lie inside the plot frame as laid out, how many marks have a visible
stroke, and how many guides (the capacity page's knee and SLO) were laid out; ``--dump-dom`` gives them back.

Without ``chromium`` on the PATH the test skips, unless ``STRESSOR_REQUIRE_CHROMIUM`` or ``CI`` is set (``.ci/run``
sets both after installing Debian's ``chromium``): there it fails, so a CI run cannot pass without a render.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from support.browser import FLAGS, Browser, coloured, png_pixels
from support.cli import stressor_here

from stressor.report.html import CSP

pytestmark = pytest.mark.e2e

REPORT_CHARTS = ("latency", "runs", "outcomes", "load", "failures", "spectrum")
SCENARIO_CHARTS = ("scenario-latency", "scenario-outcomes")
CAPACITY_CHARTS = ("capacity-throughput", "capacity-latency", "capacity-failures")
REQUIRED_BY = ("STRESSOR_REQUIRE_CHROMIUM", "CI")
MEASURE = """<script>
for (const svg of document.querySelectorAll("svg.chart")) {
  const box = svg.getBoundingClientRect();
  const frame = svg.querySelector("rect.frame");
  const inner = frame ? frame.getBoundingClientRect() : null;
  const inside = (x, y) => inner && x >= inner.left - 1 && x <= inner.right + 1 && y >= inner.top - 1
    && y <= inner.bottom + 1;
  const matrix = svg.getScreenCTM();
  let points = 0, stroked = 0;
  for (const line of svg.querySelectorAll("g.series polyline")) {
    const style = getComputedStyle(line);
    if (style.stroke !== "none" && style.visibility === "visible" && parseFloat(style.strokeWidth) > 0) stroked++;
    for (let i = 0; i < line.points.numberOfItems; i++) {
      const at = line.points.getItem(i).matrixTransform(matrix);
      if (inside(at.x, at.y)) points++;
    }
  }
  for (const dot of svg.querySelectorAll("g.series circle")) {
    const at = dot.getBoundingClientRect();
    if (at.width > 0 && inside(at.x + at.width / 2, at.y + at.height / 2)) points++;
  }
  for (const bar of svg.querySelectorAll("g.series rect, g.row [data-key]")) {
    const at = bar.getBoundingClientRect();
    if ((at.width > 0 || at.height > 0) && inside(at.x + at.width / 2, at.y + at.height / 2)) {
      points++;
      if (getComputedStyle(bar).fill !== "none" || bar.tagName === "g") stroked++;
    }
  }
  let bands = 0;
  for (const band of svg.querySelectorAll("g.band rect")) {
    const at = band.getBoundingClientRect();
    if (at.width > 1 && inside(at.x + at.width / 2, at.y + at.height / 2)) bands++;
  }
  const tips = svg.querySelectorAll("title").length - 1;
  let guides = 0;
  for (const guide of svg.querySelectorAll("g.guide")) {
    const at = guide.getBoundingClientRect();
    if ((at.width > 0 || at.height > 0) && inside(at.x + at.width / 2, at.y + at.height / 2)) guides++;
  }
  svg.setAttribute("data-size", Math.round(box.width) + "x" + Math.round(box.height));
  svg.setAttribute("data-drawn", [points, stroked, guides, bands, tips].join(" "));
}
document.body.setAttribute("data-seen", document.querySelector("main").innerText);
document.body.setAttribute("data-measured", "yes");
</script>"""

PROFILE = """
name = "render"
grace = "5s"
interval = "500ms"
[target]
poll_interval = "20ms"
[batch]
runs = 3
stagger = "5ms"
[scenarios]
corpus = "corpus.jsonl"
[[stages]]
name = "warm"
duration = "1s"
rate = "5/s"
[[stages]]
name = "push"
duration = "1s"
rate = "12/s"
"""
CORPUS = """\
{"name": "hours", "scenario_prompt": "Ask for the opening hours.", "expected_outcome": "completed"}
{"name": "refund", "scenario_prompt": "Ask for a refund.", "expected_outcome": "completed"}
"""
CAPACITY_PROFILE = """
grace = "5s"
[target]
poll_interval = "20ms"
[batch]
runs = 1
[[stages]]
duration = "1s"
in_flight = 1
"""


@pytest.fixture(scope="module")
def chromium() -> Path:
    found = shutil.which("chromium")
    if found is not None:
        return Path(found)
    required = [name for name in REQUIRED_BY if os.environ.get(name)]
    if required:
        pytest.fail(f"{' and '.join(required)} is set, but chromium is not on the PATH: the HTML render check needs it")
    pytest.skip("needs chromium on the PATH (Debian package chromium); CI requires it")


def _chromium(binary: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(binary),
            *FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1280,2000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _stressor(*args: str, cwd: Path) -> None:
    """``stressor ARGS`` in ``cwd``, in this process on virtual time (the simulator in memory)."""
    done = stressor_here(*(str(cwd / arg) if arg.endswith((".toml", ".json", ".html")) else arg for arg in args))
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The report of a short run, through ``stressor report --html``, and a capacity page."""
    where = tmp_path_factory.mktemp("pages")
    (where / "p.toml").write_text(PROFILE)
    (where / "c.toml").write_text(CAPACITY_PROFILE)
    (where / "corpus.jsonl").write_text(CORPUS)
    _stressor("run", "p.toml", "--out", "results.json", "--progress", "0", "--sim-failure-rate", "0.2", cwd=where)
    _stressor("report", "results.json", "--html", "report.html", "-t", "failure_rate < 50%", cwd=where)
    _stressor(
        "capacity", "c.toml", "--sim-slots", "2", "--sim-call-duration", "fixed(300)", "--start", "1", "--step", "2",
        "--max", "5", "--step-duration", "1s", "--slo", "queue_to_completion.p95 < 450ms", "--html", "capacity.html",
        cwd=where,
    )  # fmt: skip
    return {"report": where / "report.html", "capacity": where / "capacity.html"}


class Drawn(NamedTuple):
    """What the browser laid out of one chart."""

    width: int
    height: int
    points: int  # polyline vertices, dots, bars and row marks inside the plot frame
    stroked: int  # lines with a visible stroke, bars with a fill
    guides: int  # thresholds, SLO bounds, the knee
    bands: int  # the plan's stages, shaded
    tips: int  # SVG <title> tooltips, the chart's own title aside


def _measure(binary: Path, page: Path, tmp_path: Path) -> tuple[dict[str, Drawn], str]:
    """What the browser laid out of each chart of ``page``, and the page's text as rendered (``innerText``)."""
    text = page.read_text(encoding="utf-8")
    assert CSP in text and "<script" not in text
    measured = text.replace(CSP, CSP + "; script-src 'unsafe-inline'").replace("</body>", MEASURE + "</body>")
    probe = tmp_path / f"measured-{page.name}"
    probe.write_text(measured, encoding="utf-8")
    done = _chromium(binary, tmp_path / "profile", "--dump-dom", probe.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'data-measured="yes"' in done.stdout, "the measuring script did not run"
    charts = {}
    for tag in re.findall(r'<svg class="chart"[^>]*>', done.stdout):
        chart = re.search(r'data-chart="([^"]+)"', tag)
        size = re.search(r'data-size="(\d+)x(\d+)"', tag)
        drawn = re.search(r'data-drawn="(\d+) (\d+) (\d+) (\d+) (\d+)"', tag)
        assert chart and size and drawn, tag
        charts[chart[1]] = Drawn(int(size[1]), int(size[2]), *(int(n) for n in drawn.groups()))
    seen = re.search(r'data-seen="([^"]*)"', done.stdout)
    assert seen is not None
    return charts, " ".join(html.unescape(seen[1]).split())


def test_every_chart_of_the_run_report_draws_its_points(chromium: Path, pages: dict[str, Path], tmp_path: Path) -> None:
    charts, _ = _measure(chromium, pages["report"], tmp_path)
    assert list(charts) == [*REPORT_CHARTS, *SCENARIO_CHARTS]
    for chart, drawn in charts.items():
        assert drawn.width > 300 and drawn.height > 60, (chart, drawn)
        # A 2 s run in 500 ms intervals: at least 3 intervals a series, and the spectrum's many steps; a scenario
        # chart: a mark per scenario at least.
        assert drawn.points >= (2 if chart in SCENARIO_CHARTS else 3), (chart, drawn)
        assert drawn.stroked >= 1, chart
        # Every value can be read by pointing at it.
        assert drawn.tips >= 2, (chart, drawn)
    for chart in ("latency", "runs", "outcomes", "load", "failures"):
        assert charts[chart].bands == 2, (chart, "the stages warm and push are not shaded")
    assert charts["spectrum"].bands == 0
    assert charts["failures"].guides == 1, "the failure-rate threshold is not drawn"


def test_the_run_report_says_its_verdict_and_that_its_cost_is_simulated(
    chromium: Path, pages: dict[str, Path], tmp_path: Path
) -> None:
    _, seen = _measure(chromium, pages["report"], tmp_path)
    # 20 % of calls fail against two scenarios expected to complete: a run failed, so a scenario did.
    assert re.search(r"\(grace included\) FAIL a scenario missed its expected outcome thresholds", seen), seen[:400]
    assert "thresholds all 1 passed" in seen
    assert re.search(r"scenarios against their expected outcome: \d passed, \d FAILED \((hours|refund)", seen)
    assert "the embedded simulator: every figure, and the cost, is simulated" in seen
    assert re.search(r"\d+\.\d\d USD \(simulated\) simulated cost \(the simulator's estimate, not a bill\)", seen)
    assert "estimated cost" not in seen
    assert "Shaded: the plan's stages (warm, push)" in seen
    text = pages["report"].read_text(encoding="utf-8")
    assert re.search(r"<title>at \d+(\.\d+)?s · stage push\np50: ", text), "no tooltip reads a time of the push"


def test_the_capacity_page_draws_its_steps_the_knee_and_the_slo(
    chromium: Path, pages: dict[str, Path], tmp_path: Path
) -> None:
    charts, seen = _measure(chromium, pages["capacity"], tmp_path)
    assert list(charts) == list(CAPACITY_CHARTS)
    text = pages["capacity"].read_text(encoding="utf-8")
    steps = len(re.findall(r'class="badge (?:ok|bad)"', text))
    assert steps >= 2, "the search ran fewer than two steps"
    for chart, drawn in charts.items():
        assert drawn.width > 300 and drawn.height > 100, (chart, drawn)
        assert drawn.points >= steps, (chart, drawn, steps)
        assert drawn.stroked >= 1, chart
        assert drawn.guides >= 1, (chart, "the knee is not marked")
        assert drawn.tips >= steps, (chart, "a step cannot be read by pointing at it")
    assert charts["capacity-latency"].guides >= 2  # the knee and the p95 bound
    # Two slots and 300 ms calls: 1 in flight holds, the search breaks above 2 and says what is sustained.
    sustained = r"Sustains about [\d.]+ runs/s \(closed: \d runs in flight\) with queue_to_completion\.p95 < 450ms"
    assert re.search(sustained, seen), seen[:400]
    assert re.search(r"Knee: held at \d, broke at \d runs in flight", seen), seen[:400]


# Each region's laid-out box: the verdict banner and every chart, in page coordinates.
REGIONS = """JSON.stringify([...document.querySelectorAll("#verdict, svg.chart")].map((el) => {
  const box = el.getBoundingClientRect();
  return {name: el.dataset.chart || el.id, left: box.left + scrollX, top: box.top + scrollY, width: box.width,
          height: box.height};
}))"""


@pytest.mark.parametrize("which", ["report", "capacity"])
def test_the_report_renders_to_a_screenshot(
    chromium: Path, pages: dict[str, Path], tmp_path: Path, which: str
) -> None:
    with Browser(chromium, tmp_path / "browser", width=1280, height=900) as browser:
        tab = browser.open(pages[which].as_uri())
        tab.wait_for("document.readyState === 'complete' && !!document.getElementById('verdict')")
        regions = json.loads(tab.evaluate(REGIONS))
        width, height, rows = png_pixels(tab.screenshot())
    assert width == 1280 and height > 900  # the whole page, taller than the window
    names = [region["name"] for region in regions]
    assert names[0] == "verdict" and len(names) == 1 + (8 if which == "report" else 3), names
    for region in regions:
        # Not blank: the banner's red (FAIL) or green (sustained) border and word; each chart's lines, bars, dots.
        assert region["top"] + region["height"] <= height, region
        drawn = coloured(rows, region["left"], region["top"], region["width"], region["height"])
        assert drawn > 200, (region["name"], drawn)


@pytest.mark.parametrize(("required", "outcome"), [(True, "1 error"), (False, "1 skipped")])
def test_without_chromium_the_check_fails_where_it_is_required(tmp_path: Path, required: bool, outcome: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED_BY}
    env["PATH"] = str(tmp_path)  # no chromium here (the interpreter is called by its full path)
    if required:
        env["STRESSOR_REQUIRE_CHROMIUM"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs",
         f"{__file__}::test_the_report_renders_to_a_screenshot[report]"],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent, env=env, check=False,
    )  # fmt: skip
    assert outcome in done.stdout, done.stdout[-2000:]
    assert (done.returncode != 0) is required
    if required:
        assert "STRESSOR_REQUIRE_CHROMIUM is set, but chromium is not on the PATH" in done.stdout
