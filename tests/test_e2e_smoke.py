"""The README's first command, as written: `stressor run profiles/smoke.toml` against the embedded simulator,
in this process on virtual time (its 10 s plan in milliseconds); and a short run of the same shape as a user
runs it, over real sockets (a process of its own, the simulator in another)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.cli import stressor_here

ROOT = Path(__file__).resolve().parent.parent
SHORT_SMOKE = (ROOT / "profiles" / "smoke.toml").read_text().replace('duration = "10s"', 'duration = "1s"')


def check_the_summary(results: dict[str, Any], stdout: str, planned: int) -> None:
    """Every planned run followed to its end, with real percentiles, in the file and on the console."""
    runs = results["runs"]
    assert runs["planned"] == runs["submitted"] == planned
    assert runs["completed"] + runs["failed"] == planned
    assert runs["open"] == runs["errored"] == runs["rejected"] == 0
    assert results["thresholds"] == ["dropped == 0"]
    for name, measure in results["measures"].items():
        if name in ("queue_to_completion", "time_queued", "time_in_progress", "submit_rtt"):
            for stat in ("p50", "p90", "p99", "max"):
                value = measure[stat]
                assert isinstance(value, int | float) and math.isfinite(value) and value >= 0, (name, stat, value)
    q2c = results["measures"]["queue_to_completion"]
    assert q2c["count"] == planned
    assert 0 < q2c["p50"] <= q2c["p99"] <= q2c["max"] < 10
    # The console summary shows the figures, not a dash.
    row = next(line for line in stdout.splitlines() if line.strip().startswith("queue_to_completion"))
    assert any(ch.isdigit() for ch in row) and " - " not in row.split("queue_to_completion", 1)[1][:20]
    assert "thresholds: 1 of 1 passed" in stdout


def test_the_smoke_profile_runs_its_200_runs_and_reports_real_percentiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "results.json"
    monkeypatch.chdir(ROOT)
    done = stressor_here("run", "profiles/smoke.toml", "--out", str(out), "--progress", "0", "-t", "dropped == 0")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    check_the_summary(orjson.loads(out.read_bytes()), done.stdout, planned=200)


@pytest.mark.e2e
def test_a_short_smoke_run_over_real_sockets_reports_real_percentiles(tmp_path: Path) -> None:
    profile = tmp_path / "smoke.toml"
    profile.write_text(SHORT_SMOKE)  # 1 s of the smoke profile: 4 batches of 5 runs
    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "stressor", "run", str(profile), "--out", str(out), "--progress", "0",
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
    check_the_summary(orjson.loads(out.read_bytes()), done.stdout, planned=20)
