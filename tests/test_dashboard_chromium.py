"""The live dashboard in a real browser: headless Chromium opens the page ``stressor run --dashboard`` prints while
a short run goes, and reads it twice over the DevTools protocol (``support.browser``): the figures appear and
change as the server-sent events come, every chart is drawn (points inside its frame, coloured pixels on the
screenshot), and when the run ends the page says where the HTML report is.

Without ``chromium`` on the PATH the test skips, unless ``STRESSOR_REQUIRE_CHROMIUM`` or ``CI`` is set: there it
fails (``.ci/run`` installs Chromium and sets both).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.browser import Browser, coloured, find_chromium, png_pixels

pytestmark = pytest.mark.e2e

CHARTS = ("latency", "runs", "outcomes", "load", "failures", "spectrum")  # the report's, over time
PROFILE = """
name = "in the browser"
interval = "500ms"
grace = "10s"
[target]
poll_interval = "20ms"
[batch]
runs = 2
[[stages]]
name = "warm"
duration = "3s"
rate = "4/s"
[[stages]]
name = "push"
duration = "3s"
rate = "10/s"
"""
# Each chart's laid-out box, and the plotted points (polyline vertices and dots) inside its frame.
MEASURE = """JSON.stringify([...document.querySelectorAll("svg.chart")].map((svg) => {
  const box = svg.getBoundingClientRect();
  const frame = svg.querySelector("rect.frame");
  const inner = frame ? frame.getBoundingClientRect() : null;
  const inside = (x, y) => inner && x >= inner.left - 1 && x <= inner.right + 1 && y >= inner.top - 1
    && y <= inner.bottom + 1;
  const matrix = svg.getScreenCTM();
  let points = 0;
  for (const line of svg.querySelectorAll("g.series polyline")) {
    for (let i = 0; i < line.points.numberOfItems; i++) {
      const at = line.points.getItem(i).matrixTransform(matrix);
      if (inside(at.x, at.y)) points++;
    }
  }
  const bands = [...svg.querySelectorAll("g.band rect")].filter((band) => band.getBoundingClientRect().width > 1);
  return {chart: svg.dataset.chart, left: box.left + scrollX, top: box.top + scrollY, width: box.width,
          height: box.height, points, bands: bands.length};
}))"""


@pytest.fixture(scope="module")
def chromium() -> Path:
    return find_chromium("the dashboard's browser check")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``stressor run --dashboard --html`` going in its own process, and the dashboard's URL it printed."""
    (tmp_path / "p.toml").write_text(PROFILE)
    process = subprocess.Popen(
        [sys.executable, "-m", "stressor", "run", str(tmp_path / "p.toml"), "--out", str(tmp_path / "r.json"),
         "--progress", "0", "--dashboard", "--html", str(tmp_path / "report.html"), "--sim-failure-rate", "0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        said = process.stderr.readline()
        found = re.search(r"live dashboard at (http://127\.0\.0\.1:\d+/)", said)
        assert found, said
        yield process, found[1]
    finally:
        process.kill()
        process.wait()


def test_the_dashboard_updates_in_the_browser_and_links_the_report_at_the_end(
    chromium: Path, running: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    process, url = running
    with Browser(chromium, tmp_path / "profile", width=1280, height=1400) as browser:
        tab = browser.open(url)
        tab.wait_for("Number(document.body.dataset.events || 0) >= 3")
        first = tab.evaluate("document.getElementById('progress').textContent")
        elapsed = tab.evaluate("document.getElementById('state').textContent")
        time.sleep(1.2)  # two intervals
        tab.wait_for(f"document.getElementById('state').textContent !== {elapsed!r}")
        second = tab.evaluate("document.getElementById('progress').textContent")
        assert first != second
        for text in (first, second):
            assert re.search(r"runs +planned 84 +due \d+ +submitted \d+ +ended \d+", text), text
            assert "warm " in text and "push " in text and "grace " in text
        assert int(re.search(r"due (\d+)", second)[1]) > int(re.search(r"due (\d+)", first)[1])  # type: ignore[index]

        laid_out = json.loads(tab.evaluate(MEASURE))
        assert [c["chart"] for c in laid_out] == list(CHARTS)
        for chart in laid_out:
            assert chart["width"] > 300 and chart["height"] > 100, chart
        points = {c["chart"]: c["points"] for c in laid_out}
        assert points["latency"] >= 2 and points["load"] >= 2 and points["spectrum"] >= 2, points
        # The plan's stages shaded as in the report: warm from the first interval, push once the run reaches it
        bands = {c["chart"]: c["bands"] for c in laid_out}
        assert all(bands[chart] == 2 for chart in CHARTS if chart != "spectrum"), bands

        shot = tab.screenshot()
        width, height, rows = png_pixels(shot)
        assert width == 1280 and height >= 1000
        for chart in laid_out:
            assert coloured(rows, chart["left"], chart["top"], chart["width"], chart["height"]) > 200, chart["chart"]

        ending = tab.wait_for("document.body.dataset.ended === 'yes' && document.getElementById('ending').innerHTML")
        assert (tmp_path / "report.html").as_uri() in ending
        assert "ended" in tab.evaluate("document.getElementById('state').textContent")
        final = tab.evaluate("document.getElementById('progress').textContent")
        assert "grace period" in final and re.search(r"due 84 ", final)
    assert process.wait(timeout=60) == 0
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    # The same charts as the report draws over time (the report adds per-variant and per-scenario ones).
    assert re.findall(r'<svg class="chart" data-chart="([^"]+)"', report)[: len(CHARTS)] == list(CHARTS)


def test_without_chromium_the_check_fails_where_it_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no chromium here
    for name in ("STRESSOR_REQUIRE_CHROMIUM", "CI"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(pytest.skip.Exception):
        find_chromium("the dashboard's browser check")
    monkeypatch.setenv("STRESSOR_REQUIRE_CHROMIUM", "1")
    with pytest.raises(pytest.fail.Exception, match="STRESSOR_REQUIRE_CHROMIUM is set, but chromium is not on"):
        find_chromium("the dashboard's browser check")
