"""``stressor capacity`` as a user runs it, in this process on virtual time against the simulator in memory: the
time it may take said first, the step table with its header on stdout, the knee narrowed by bisection, a break
re-checked, the load sustained in one sentence; the flags it shares with ``run``; --out, --junit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
from support.cli import stressor_here
from support.junit_schema import problems

# 8 call slots, each call 200 ms: 40 runs/s at most, queue-to-completion 200 ms while a slot is free
PROFILE = """grace = "2s"
[target]
poll_interval = "10ms"
[batch]
runs = 1
[[stages]]
duration = "1s"
in_flight = 1
"""
SERVICE = ["--sim-slots", "8", "--sim-call-duration", "fixed(200)", "--sim-seed", "7"]
SLO = ["--slo", "queue_to_completion.p95 < 300ms"]


def write(tmp_path: Path) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(PROFILE)
    return path


def test_the_search_narrows_the_knee_and_says_the_load_sustained(tmp_path: Path) -> None:
    out = tmp_path / "capacity.json"
    done = stressor_here("capacity", str(write(tmp_path)), *SERVICE, *SLO, "--start", "2", "--step", "4",
                         "--max", "30", "--step-duration", "2s", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["runs", "in", "flight", "step", "p50", "p95", "p99", "failures", "runs/s", "SLO"]
    table = [line.split()[:2] for line in lines[1:] if line.strip() and not line.startswith(("knee", "sustains"))]
    # climbs 2, 6, 10; 10 breaks (9 runs wait for 8 slots) and breaks again; 8 holds, 9 breaks twice
    assert table == [["2", "climb"], ["6", "climb"], ["10", "climb"], ["10", "re-check"], ["8", "narrow"],
                     ["9", "narrow"], ["9", "re-check"]]  # fmt: skip
    assert lines[-2:] == [
        "knee: held at 8, broke at 9 runs in flight",
        "sustains about 40 runs/s (closed: 8 runs in flight) with queue_to_completion.p95 < 300ms",
    ]
    saved = orjson.loads(out.read_bytes())
    assert saved["knee"] == {"last_held": 8, "first_broke": 9}
    assert [(s["level"], s["recheck"]) for s in saved["steps"]] == [
        (2, False), (6, False), (10, False), (10, True), (8, False), (9, False), (9, True)
    ]  # fmt: skip
    assert saved["sustained"]["level"] == 8 and 38 <= saved["sustained"]["runs_per_s"] <= 41


def test_the_time_it_may_take_is_said_before_the_first_step(tmp_path: Path) -> None:
    done = stressor_here("capacity", str(write(tmp_path)), *SERVICE, *SLO, "--max", "4", "--step-duration", "1s")
    assert done.returncode == 0, done.stderr
    said = done.stderr.splitlines()
    assert said[0].startswith("capacity search of 'p': runs in flight from 2 by 2 up to 4 (2 levels), the knee "
                              "narrowed to 1, 1s a step; SLO: queue_to_completion.p95 < 300ms")  # fmt: skip
    assert said[1] == (
        "time: 2s to climb every level (2 steps of 1s); at most 18s (6 steps, each break re-checked and the knee "
        "narrowed, each with up to 2s of grace)"
    )
    assert done.stdout.splitlines()[-1] == (
        "sustains at least about 20 runs/s (closed: 4 runs in flight, the highest tried) with "
        "queue_to_completion.p95 < 300ms; no step broke it; raise --max to find the knee"
    )


def test_capacity_takes_runs_simulator_flags_and_a_threshold_gate(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    done = stressor_here(
        "capacity", str(write(tmp_path)), "--sim-slots", "8", "--sim-call-duration", "fixed(200)",
        "--sim-failure-rate", "0.5", "--sim-seed", "3", "--sim-time-scale", "0.001", "--slo", "failure_rate < 5%",
        "--max", "4", "--step-duration", "1s", "-t", "achieved_runs_per_s >= 1/s", "--junit", str(junit),
    )  # fmt: skip
    # half the calls fail: every level breaks its failure-rate SLO, so no load is sustained and the gate fails
    assert done.returncode == 5, done.stderr
    assert "sustains none of the loads tried: even 1 runs in flight broke failure_rate < 5%" in done.stdout
    assert done.stderr.splitlines()[-1] == "stressor: 1 of 1 thresholds failed on the sustained step"
    assert problems(junit.read_text(encoding="utf-8")) == []  # no step held: still the strict JUnit schema
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "1"
    case = next(c for c in suite.iter("testcase") if c.get("classname") == "stressor.thresholds")
    assert case.get("name") == "achieved_runs_per_s >= 1/s" and case.find("failure") is not None


def test_a_passing_gate_exits_0_with_a_passing_junit(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    done = stressor_here("capacity", str(write(tmp_path)), *SERVICE, *SLO, "--max", "4", "--step-duration", "1s",
                         "-t", "achieved_runs_per_s >= 5/s", "--junit", str(junit))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "pass     achieved_runs_per_s >= 5/s" in done.stdout
    assert ET.parse(junit).getroot().get("failures") == "0"


def test_the_limits_flags_of_run_reach_every_step(tmp_path: Path) -> None:
    # a create rate of 2/s caps what any level can start: 4 runs in flight of 200 ms calls would start 20/s
    out = tmp_path / "c.json"
    done = stressor_here("capacity", str(write(tmp_path)), *SERVICE, *SLO, "--max", "4", "--step-duration", "2s",
                         "--create-rate", "2/s", "--mode", "obey", "--poll-interval", "20ms", "--grace", "1s",
                         "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert all(step["runs_per_s"] <= 2.5 for step in orjson.loads(out.read_bytes())["steps"])


def test_bad_search_flags_are_one_sentence(tmp_path: Path) -> None:
    profile = str(write(tmp_path))
    for args, sentence in (
        (["--start", "2.5"], "stressor: closed levels are whole runs in flight: --start 2.5 is not"),
        (["--model", "open", "--resolution", "0"], "stressor: --resolution must be greater than 0, not 0"),
        (["--poll-interval", "0s"], "stressor: --poll-interval: must be greater than zero"),
        (["--mode", "loud"], "stressor: --mode must be obey or stress, not 'loud'"),
    ):
        done = stressor_here("capacity", profile, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.splitlines() == [sentence], args
