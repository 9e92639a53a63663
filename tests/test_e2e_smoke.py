"""The README's first command, as written: `stressor run profiles/smoke.toml` against the embedded simulator."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


def test_the_smoke_profile_runs_its_200_runs_and_reports_real_percentiles(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "stressor", "run", "profiles/smoke.toml", "--out", str(out), "--progress", "0",
         "-t", "dropped == 0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        env={k: v for k, v in os.environ.items() if k not in ("STRESSOR_BASE_URL", "THUNDERPHONE_API_KEY")},
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    results = orjson.loads(out.read_bytes())
    runs = results["runs"]
    assert runs["planned"] == runs["submitted"] == 200
    assert runs["completed"] + runs["failed"] == 200
    assert runs["open"] == runs["errored"] == runs["rejected"] == 0
    assert results["thresholds"] == ["dropped == 0"]
    for name, measure in results["measures"].items():
        if name in ("queue_to_completion", "time_queued", "time_in_progress", "submit_rtt"):
            for stat in ("p50", "p90", "p99", "max"):
                value = measure[stat]
                assert isinstance(value, int | float) and math.isfinite(value) and value >= 0, (name, stat, value)
    q2c = results["measures"]["queue_to_completion"]
    assert q2c["count"] == 200
    assert 0 < q2c["p50"] <= q2c["p99"] <= q2c["max"] < 10
    # The console summary shows the figures, not a dash.
    row = next(line for line in done.stdout.splitlines() if line.strip().startswith("queue_to_completion"))
    assert any(ch.isdigit() for ch in row) and " - " not in row.split("queue_to_completion", 1)[1][:20]
    assert "thresholds: 1 of 1 passed" in done.stdout
