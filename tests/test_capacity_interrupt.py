"""`stressor capacity` interrupted (Ctrl-C or SIGTERM) keeps the steps measured so far: the knee so far is
printed, --out and --html are written, and it exits 130. In this process on virtual time, the signal sent to it
once two steps were measured."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import anyio
import orjson
import pytest
from support.cli import stdout_so_far, stressor_here
from support.memory import MemorySurroundings

PROFILE = """grace = "5s"
[target]
poll_interval = "20ms"
[batch]
runs = 2
[[stages]]
duration = "1s"
in_flight = 1
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_search_keeps_its_steps_and_says_the_knee_so_far(tmp_path: Path, sig: signal.Signals) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE)
    out, html = tmp_path / "capacity.json", tmp_path / "capacity.html"
    rows: list[str] = []

    async def interrupt_after_two_steps(_: MemorySurroundings) -> None:
        while len(rows) < 2:  # the step rows come on stdout as each step ends
            await anyio.sleep(0.01)
            rows[:] = [line for line in stdout_so_far().splitlines() if "held" in line or "BROKE" in line]
        os.kill(os.getpid(), sig)

    done = stressor_here(
        "capacity", str(profile), "--sim-slots", "50", "--sim-call-duration", "fixed(100)", "--start", "2",
        "--step", "2", "--max", "40", "--step-duration", "2s", "--slo", "queue_to_completion.p95 < 5s",
        "--out", str(out), "--html", str(html), beside=interrupt_after_two_steps,
    )  # fmt: skip
    stdout, stderr = done.stdout, done.stderr
    assert len(rows) == 2, "the search ended before two steps were measured"
    assert done.returncode == 130, stderr
    assert "Traceback" not in stderr
    saved = orjson.loads(out.read_bytes())
    assert saved["interrupted"] is True
    measured = [step["level"] for step in saved["steps"]]
    assert measured[:2] == [2, 4] and all(step["held"] for step in saved["steps"])
    assert len(measured) < 20  # stopped: not every level up to 40
    assert saved["knee"] == {"last_held": measured[-1], "first_broke": None}
    assert f"knee so far (interrupted): held up to {measured[-1]:g} runs in flight" in stdout
    page = html.read_text(encoding="utf-8")
    assert page.lower().startswith("<!doctype html>")
    assert "Interrupted: the search stopped before it ended." in page
