"""The HTML report in a real browser: headless Chromium lays out every chart with a size, and takes a screenshot.

Skipped when ``/usr/bin/chromium`` is missing (CI installs Debian's ``chromium``); this test installs nothing.
The report itself runs no script (its Content-Security-Policy forbids it); to read the laid-out sizes, the test
renders a copy with the policy relaxed for one inline script that writes each SVG's ``getBoundingClientRect()``
into a ``data-size`` attribute, then reads them back from ``--dump-dom``.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from test_report_fixture import load_fixture

from stressor.report.html import CSP, render_html
from stressor.report.thresholds import evaluate, parse_thresholds

CHROMIUM = Path("/usr/bin/chromium")
CHARTS = ("latency", "runs", "load", "failures", "spectrum")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MEASURE = """<script>
for (const svg of document.querySelectorAll("svg.chart")) {
  const box = svg.getBoundingClientRect();
  svg.setAttribute("data-size", Math.round(box.width) + "x" + Math.round(box.height));
  svg.setAttribute("data-marks", svg.querySelectorAll("polyline").length);
}
</script>"""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian package chromium)")


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1280,2000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    doc = load_fixture()
    verdicts = evaluate(parse_thresholds(["failure_rate < 25%", "queue_to_completion.p99 < 50ms"]), doc)
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(doc, verdicts), encoding="utf-8")
    return path


def test_every_chart_is_laid_out_with_a_size_in_the_rendered_dom(report: Path, tmp_path: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert CSP in page
    measured = page.replace(CSP, CSP + "; script-src 'unsafe-inline'").replace("</body>", MEASURE + "</body>")
    probe = tmp_path / "measured.html"
    probe.write_text(measured, encoding="utf-8")
    done = _chromium(tmp_path / "profile", "--dump-dom", probe.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    svgs = re.findall(r"<svg\b[^>]*>", done.stdout)
    sizes = {}
    for tag in svgs:
        chart = re.search(r'data-chart="([^"]+)"', tag)
        size = re.search(r'data-size="(\d+)x(\d+)"', tag)
        marks = re.search(r'data-marks="(\d+)"', tag)
        assert chart and size and marks, tag
        sizes[chart[1]] = (int(size[1]), int(size[2]), int(marks[1]))
    assert list(sizes) == list(CHARTS)
    for chart, (width, height, marks) in sizes.items():
        assert width > 300 and height > 100, (chart, width, height)
        assert marks >= 1, chart


def test_the_page_renders_to_a_screenshot(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = _chromium(tmp_path / "profile", f"--screenshot={shot}", report.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 2000)
    assert len(data) > 50_000  # a blank page compresses to a few kilobytes
