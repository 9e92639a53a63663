"""The screenshots of the docs, made by stressor itself:
``python docs/screenshots.py [dashboard] [report] [capacity]`` (all three by default).

It runs the demo profile below against the embedded simulator with ``--dashboard --html`` and two thresholds,
opens the live dashboard in headless Chromium (Debian's ``chromium``, driven as the tests drive it:
``tests/support/browser.py``) half way through the run and saves ``docs/images/dashboard.png``; at the end it
saves the top of the HTML report as ``docs/images/report.png``. Then a short ``stressor capacity --html`` search
gives ``docs/images/capacity.png``. Run it with the project installed (``pip install -e .``), from anywhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
sys.path.insert(0, str(ROOT / "tests"))

from support.browser import Browser  # noqa: E402 (the tests' own DevTools client, found above)

PROFILE = """
name = "checkout agent, step load"
interval = "1s"
grace = "20s"
[target]
poll_interval = "100ms"
[batch]
runs = 4
stagger = "50ms"
[scenarios]
corpus = "corpus.jsonl"
[[stages]]
name = "warm-up"
duration = "8s"
rate = "1/s"
[[stages]]
name = "step-up"
duration = "8s"
rate = "2/s"
[[stages]]
name = "peak"
duration = "8s"
rate = "4/s"
"""
CORPUS = """\
{"name": "opening hours", "scenario_prompt": "Ask for the opening hours on Saturday."}
{"name": "refund", "scenario_prompt": "Ask for a refund of a double charge."}
{"name": "change address", "scenario_prompt": "Move the delivery to another address."}
"""
THRESHOLDS = ("-t", "queue_to_completion.p95 < 5s", "-t", "failure_rate < 3%")
CAPACITY_PROFILE = """
name = "checkout agent"
grace = "5s"
[target]
poll_interval = "50ms"
[batch]
runs = 1
[[stages]]
duration = "1s"
in_flight = 1
"""
CAPACITY = ("--sim-slots", "6", "--sim-call-duration", "lognormal(500,0.2)", "--sim-seed", "7", "--start", "2",
            "--step", "2", "--max", "14", "--step-duration", "4s", "--slo", "queue_to_completion.p95 < 900ms",
            "--slo", "failure_rate < 5%")  # fmt: skip
# The report's top: the banner, the runs, the charts over time (the tables and per-scenario charts follow).
REPORT_TOP = "Math.ceil(document.getElementById('charts').getBoundingClientRect().bottom + scrollY + 12)"
SIMULATOR = ("--sim-slots", "24", "--sim-failure-rate", "0.04", "--sim-call-duration", "lognormal(1500,0.4)",
             "--sim-seed", "7")  # fmt: skip
SHOT_AT_S = 21.0  # into the run (about 19 s of it, after the simulator started): the third stage half done


def main(wanted: set[str]) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("docs/screenshots.py: needs chromium on the PATH (Debian package chromium)")
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        where = Path(scratch)
        (where / "demo.toml").write_text(PROFILE)
        (where / "corpus.jsonl").write_text(CORPUS)
        run = subprocess.Popen(
            [sys.executable, "-m", "stressor", "run", str(where / "demo.toml"), "--out", str(where / "r.json"),
             "--progress", "0", "--dashboard", "--html", str(where / "report.html"), *SIMULATOR, *THRESHOLDS],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert run.stderr is not None
        started = time.monotonic()
        said = run.stderr.readline()
        found = re.search(r"live dashboard at (\S+) ", said)
        if found is None:
            run.kill()
            sys.exit(f"docs/screenshots.py: stressor did not serve a dashboard: {said}")
        with Browser(Path(chromium), where / "browser", width=1280, height=1260) as browser:
            tab = browser.open(found[1])
            time.sleep(max(SHOT_AT_S - (time.monotonic() - started), 0.0))
            tab.wait_for("!!document.getElementById('progress')")
            if "dashboard" in wanted:
                (IMAGES / "dashboard.png").write_bytes(tab.screenshot())
                print(f"wrote {IMAGES / 'dashboard.png'}")
            if run.wait(timeout=120) not in (0, 5):  # 5: a threshold failed, which the report shows
                sys.exit(f"docs/screenshots.py: stressor run exited {run.returncode}")
            if "report" in wanted:
                tab.navigate((where / "report.html").as_uri())
                (IMAGES / "report.png").write_bytes(tab.screenshot(tab.evaluate(REPORT_TOP)))
                print(f"wrote {IMAGES / 'report.png'}")
            if "capacity" in wanted:
                (where / "capacity.toml").write_text(CAPACITY_PROFILE)
                search = subprocess.run(
                    [sys.executable, "-m", "stressor", "capacity", str(where / "capacity.toml"), *CAPACITY,
                     "--html", str(where / "capacity.html")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=600, check=False,
                )  # fmt: skip
                if search.returncode != 0:
                    sys.exit(f"docs/screenshots.py: stressor capacity exited {search.returncode}: {search.stderr}")
                tab.navigate((where / "capacity.html").as_uri())
                (IMAGES / "capacity.png").write_bytes(tab.screenshot())
                print(f"wrote {IMAGES / 'capacity.png'}")


if __name__ == "__main__":
    main(set(sys.argv[1:]) or {"dashboard", "report", "capacity"})
