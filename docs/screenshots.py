"""The screenshots of the docs, made by stressor itself: ``python docs/screenshots.py [dashboard] [report]``.

It runs the demo profile below against the embedded simulator with ``--dashboard --html``, opens the live
dashboard in headless Chromium (Debian's ``chromium``, driven as the tests drive it: ``tests/support/browser.py``)
half way through the run and saves ``docs/images/dashboard.png``; at the end it saves the HTML report's
``docs/images/report.png``. Run it with the project installed (``pip install -e .``), from anywhere.
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
        run = subprocess.Popen(
            [sys.executable, "-m", "stressor", "run", str(where / "demo.toml"), "--out", str(where / "r.json"),
             "--progress", "0", "--dashboard", "--html", str(where / "report.html"), *SIMULATOR],
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
            if run.wait(timeout=120) != 0:
                sys.exit(f"docs/screenshots.py: stressor run exited {run.returncode}")
            if "report" in wanted:
                tab.navigate((where / "report.html").as_uri())
                (IMAGES / "report.png").write_bytes(tab.screenshot())
                print(f"wrote {IMAGES / 'report.png'}")


if __name__ == "__main__":
    main(set(sys.argv[1:]) or {"dashboard", "report"})
