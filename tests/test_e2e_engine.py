"""The engine through the command line against a simulator as a real API: a spent budget, a server that dies
mid-run, a runs log that does not read back (in this process, on virtual time, the simulator in memory); a
stressor killed with -9 (real processes, ``stressor sim`` on loopback). Each is short and bounded."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import orjson
import pytest
from support.cli import stressor_here
from support.memory import MemorySurroundings
from support.virtual import START_S

from stressor.sim.config import SimConfig

KEY = "sk_test_e2e_engine_0123456789abcdef"
SIMULATOR_URL = "http://simulator-1.test"  # the first simulator stressor_here starts


def child_env() -> dict[str, str]:
    return {**os.environ, "STRESSOR_SIM_API_KEY": KEY, "THUNDERPHONE_API_KEY": KEY}


@contextmanager
def simulator(*flags: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``stressor sim`` on a free loopback port; yields the process and its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "stressor", "sim", "--port", "0", "--seed", "3", *flags],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on " in line, line
        yield process, line.split("listening on ")[1].split()[0]
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=10)


def run_cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stressor", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        check=False,
    )


CLOSED_BUDGET = """
name = "closed-budget"
grace = "3s"
mean_call_duration = "45s"
[target]
poll_interval = "20ms"
[batch]
runs = 2
[cost]
consent_to_charge = true
budget_cents = 160
[[stages]]
duration = "20s"
in_flight = 4
"""


def server(**settings: object) -> SimConfig:
    """What ``stressor sim --seed 3`` serves, with ``settings``."""
    return SimConfig.from_mapping({"api_key": KEY, "seed": 3, **settings})


def test_a_spent_budget_in_a_closed_stage_returns_promptly_with_runs_not_started(tmp_path: Path) -> None:
    # The plan assumes 45 s calls (4 runs, 64 cents); the server's take 100 ms, so the stage would top up far
    # past the 160 cents (10 runs at 16) if it never stopped. It must stop, and say why.
    profile = tmp_path / "p.toml"
    profile.write_text(CLOSED_BUDGET)
    out = tmp_path / "r.json"
    done = stressor_here(
        "run", str(profile), "--base-url", SIMULATOR_URL, "--out", str(out), "--progress", "0",
        env={"THUNDERPHONE_API_KEY": KEY}, servers=[server(call_duration="fixed(100)")],
    )  # fmt: skip
    took = done.loop.time() - START_S
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr  # a budget reached is the guard working, not a failure
    assert took < 15  # not the 20 s stage, let alone for ever
    results = orjson.loads(out.read_bytes())
    runs = results["runs"]
    assert runs["submitted"] == 10 and results["estimated_cost_cents"] <= 160
    assert runs["not_started"] == {"budget": 2}
    assert runs["planned"] == 12
    assert runs["completed"] == 10
    assert "budget reached" in results["stop_reason"]
    assert "not started" in done.stdout and "budget" in done.stdout


def real_api_profile(tmp_path: Path, stage: str, *, grace: str = "3s", runs: int = 3) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(
        f'name = "e2e"\ngrace = "{grace}"\n[target]\npoll_interval = "20ms"\n[batch]\nruns = {runs}\n'
        f'stagger = "5ms"\n[cost]\nconsent_to_charge = true\nbudget_cents = 1000000\n[[stages]]\n{stage}\n'
    )
    return path


def lines_of(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().split(b"\n") if line.endswith(b"}")]


def wait_for_lines(path: Path, count: int, deadline_s: float = 60) -> None:
    wait_for(lambda: len(lines_of(path)) >= count, f"the runs log reaching {count} lines", deadline_s)


def wait_for(ready: Callable[[], bool], what: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while not ready():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


@pytest.mark.e2e
def test_kill_9_loses_at_most_the_last_second_of_runs_and_the_log_rebuilds_the_summary(tmp_path: Path) -> None:
    from stressor.report.results import results_from_runs_log
    from stressor.sim.server import fetch_truth

    profile = real_api_profile(tmp_path, 'duration = "60s"\nrate = "10/s"')
    out, log = tmp_path / "r.json", tmp_path / "r.runs.jsonl"
    with simulator("--call-duration", "fixed(200)") as (_, base_url):
        process = subprocess.Popen(
            [sys.executable, "-m", "stressor", "run", str(profile), "--base-url", base_url, "--out", str(out)],
            env=child_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_lines(log, 25)
            logged_at = time.monotonic()
            wait_for(lambda: any(line["type"] == "counters" for line in lines_of(log)), "a counters line")
            # the bound under test is a second: the runs logged by now must have ended over a second before the kill
            time.sleep(max(0.0, logged_at + 1.0 - time.monotonic()))
        finally:
            killed_at = time.time()
            process.kill()
            process.wait(timeout=10)
        truth = fetch_truth(base_url)
    written = lines_of(log)
    logged = {line["run_id"] for line in written if line["type"] == "run"}
    # Every run the server completed at least a second before the kill was seen (polls every 20 ms) and logged.
    due = {t.id for t in truth if t.completed is not None and t.completed <= killed_at - 1.0}
    assert len(due) >= 20
    assert due <= logged, f"{len(due - logged)} runs ended over a second before the kill are not in the log"
    assert not out.exists()  # killed: no results file, the log is what is left
    counters = [line for line in written if line["type"] == "counters"]
    assert counters and sum(counters[-1]["requests"].values()) > 0
    rebuilt = results_from_runs_log(log).to_json()
    assert len(rebuilt["run_records"]) == len(logged)
    assert rebuilt["requests"] == counters[-1]["requests"]  # the HTTP counts survive the kill
    assert rebuilt["stop_reason"] == "the runs log has no end: stressor was killed"
    assert rebuilt["measures"]["start_lateness"]["source"] == "not in the runs log"
    shown = stressor_here("report", str(log))
    assert shown.returncode == 0, shown.stderr
    assert "stressor was killed" in shown.stdout
    assert "HTTP requests: 0" not in shown.stdout
    assert "not in the runs log" in shown.stdout


def test_a_server_that_dies_mid_run_leaves_its_runs_open_and_the_results_written(tmp_path: Path) -> None:
    # Runs take 4 s; the server is killed 2 s in, so every run created is still going when it dies.
    profile = real_api_profile(tmp_path, 'duration = "5s"\nrate = "2/s"', grace="2s", runs=2)
    out, log = tmp_path / "r.json", tmp_path / "r.runs.jsonl"

    async def kill_the_server(surroundings: MemorySurroundings) -> None:
        await anyio.sleep(2)
        surroundings.simulators[0].transport.kill()

    done = stressor_here(
        "run", str(profile), "--base-url", SIMULATOR_URL, "--out", str(out),
        env={"THUNDERPHONE_API_KEY": KEY}, servers=[server(call_duration="fixed(4000)")], beside=kill_the_server,
    )  # fmt: skip
    stdout, stderr = done.stdout, done.stderr
    assert "Traceback" not in stderr, stderr
    # Documented: a run that finished its plan exits 0 whatever the server did; failed calls are figures.
    assert done.returncode == 0, stderr
    assert stderr.count("[connect]") <= 1  # the failure class is told once, not per request
    results = orjson.loads(out.read_bytes())
    runs = results["runs"]
    assert runs["submitted"] > 0
    assert runs["open"] == runs["submitted"] - runs["completed"] - runs["failed"] > 0
    assert runs["completed"] == 0
    written = lines_of(log)
    assert sum(1 for line in written if line["type"] == "run" and line["outcome"] == "open") == runs["open"]
    assert written[-1]["type"] == "end"
    assert "open" in stdout


def test_a_runs_log_that_does_not_read_back_keeps_the_records_in_memory(tmp_path: Path) -> None:
    # The records are read back from the runs log for the results; /dev/null gives nothing back, so they are
    # kept in memory instead, and the results are whole.
    profile = tmp_path / "p.toml"
    profile.write_text(
        'name = "q"\ngrace = "5s"\n[target]\npoll_interval = "20ms"\n[batch]\nruns = 2\n'
        '[[stages]]\nduration = "1s"\nrate = "5/s"\n'
    )
    out = tmp_path / "r.json"
    done = stressor_here("run", str(profile), "--out", str(out), "--runs-log", "/dev/null")
    assert done.returncode == 0, done.stderr
    results = orjson.loads(out.read_bytes())
    assert len(results["run_records"]) == results["runs"]["planned"] == 10
    assert sum(i["runs"]["completed"] + i["runs"]["failed"] for i in results["intervals"]) == 10
