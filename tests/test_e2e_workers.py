"""End to end on several workers: processes of this machine (``--workers``) and a Dask cluster of processes on
loopback (``--cluster``), each checked run by run against the simulator's ground truth. Real processes and
sockets, waiting for what they need (runs in the runs log), not for fixed times; the flags refused before
anything starts are checked in this process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import orjson
import pytest
from sessions import profile_of, run_stressor
from support.cli import stressor_here

from stressor.metrics import Outcome
from stressor.profile import Profile
from stressor.session import Scale, Session, SessionResult, Where
from stressor.sim.config import SimConfig
from stressor.timestamps import NS_PER_S


def runs_logged(path: Path) -> list[dict]:
    """The run lines a runs log holds so far (a line being written is left out)."""
    if not path.exists():
        return []
    lines = [line for line in path.read_bytes().split(b"\n") if line.endswith(b"}")]
    return [line for line in map(orjson.loads, lines) if line.get("type") == "run"]


def wait_for(ready: Callable[[], bool], what: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while not ready():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)

POLL_S = 0.05
SLACK_S = 0.25  # a shared 2-core machine running a simulator and three Python processes
KEY = "sk_test_workers"


def _profile(duration_s: float = 1.0, **extra: object) -> Profile:
    return profile_of(
        {
            "grace": "20s",
            "target": {"poll_interval": f"{POLL_S * 1000:.0f}ms"},
            "batch": {"runs": 3},
            "stages": [{"duration": f"{duration_s}s", "rate": "6/s"}],
            **extra,
        }
    )


def _run(profile: Profile, scale: Scale) -> SessionResult:
    config = SimConfig.from_mapping({"api_key": KEY, "slots": 500, "seed": 11})
    where = Where(base_url=None, api_key=KEY, simulator=config)
    return anyio.run(Session(profile, where, enforce_budget=False, keep_truth=True, scale=scale).run)


def _check_against_truth(outcome: SessionResult, batches: int) -> None:
    result, truth = outcome.engine, outcome.truth
    assert truth is not None
    metrics = result.metrics
    assert metrics.planned_runs == metrics.submitted_runs == batches * 3
    assert metrics.outcomes[Outcome.COMPLETED] == batches * 3 and metrics.outcomes[Outcome.OPEN] == 0
    ids = [r.run_id for r in result.records]
    assert len(ids) == len(set(ids)) == len(truth)  # every run once, none created twice
    assert {r.batch_seq for r in result.records} == set(range(batches))  # the plan's batches, each once
    by_id = {t.id: t for t in truth}
    anchor = result.metrics.anchor
    for record in result.records:
        real = by_id[record.run_id]
        assert real.completed is not None and record.detected_ns is not None
        true_s = real.completed - anchor.to_wall_s(record.due_ns)
        ours_s = (record.detected_ns - record.due_ns) / NS_PER_S
        assert -0.002 <= ours_s - true_s <= POLL_S + SLACK_S, record.run_id
    # Due times are the plan's: batch k at k / 6 s after the shared start, whichever worker sent it.
    for record in result.records:
        assert abs((record.due_ns - result.t0_ns) / NS_PER_S - record.batch_seq / 6) < 0.001
    assert metrics.recorders["start_lateness"].count == batches
    # The coordinator's pre-flight check is counted once; the interval series counts from the shared start.
    assert metrics.requests["check ok"] == 4
    # the coordinator's own requests (the check; grades and call logs, when asked) are in no worker's series
    own = sum(n for k, n in metrics.requests.items() if k.startswith(("check ", "grade ", "call_log ")))
    assert sum(metrics.requests.values()) - own == result.samples[-1].requests


@pytest.mark.e2e
def test_two_worker_processes_run_the_plan_once_and_merge_to_the_truth_grades_joined() -> None:
    # One run for three things a run on workers must do: merge to the truth, join the grades fetched after it,
    # and the call logs this process fetched as the workers' runs ended (counted with the workers' requests).
    profile = _profile(grades={"fetch": True, "threshold": 0.5}, calls={"fetch": True})
    outcome = _run(profile, Scale(workers=2, lead_s=1.5))
    _check_against_truth(outcome, batches=6)
    result, truth = outcome.engine, outcome.truth
    assert truth is not None
    scores = {t.id: t.grade_score for t in truth}
    assert all(s is not None for s in scores.values())
    assert {r.run_id: r.grade for r in result.records} == pytest.approx(scores)
    assert result.metrics.grades.to_json()["count"] == len(truth) == 18
    assert outcome.calls is not None and outcome.calls.fetched == 18
    requests = result.metrics.requests
    assert sum(n for k, n in requests.items() if k.startswith("call_log ")) == 18
    assert sum(n for k, n in requests.items() if k.startswith("grade ")) == 18
    assert all(r.call_duration_s is not None for r in result.records)


# ---------------------------------------------------------------------------------------------- killing


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in children.read_text().split()] if children.exists() else []


def _worker_pids(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            found.append(child)
    return found


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc").exists(), reason="finds the worker processes through /proc")
def test_a_killed_worker_is_reported_and_the_others_results_are_kept(tmp_path: Path) -> None:
    profile = tmp_path / "long.toml"
    profile.write_text(
        'grace = "5s"\n[target]\npoll_interval = "50ms"\n[batch]\nruns = 2\n[[stages]]\nduration = "2s"\nrate = "8/s"\n'
    )
    out, log = tmp_path / "results.json", tmp_path / "results.runs.jsonl"
    command = [sys.executable, "-m", "stressor", "run", str(profile), "--workers", "2", "--out", str(out)]
    process = subprocess.Popen(
        [*command, "--progress", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    )
    try:
        wait_for(lambda: len(_worker_pids(process.pid)) == 2, "two worker processes")
        workers = _worker_pids(process.pid)

        def each_worker_streamed(runs: int) -> bool:
            shares = [line["batch_seq"] % 2 for line in runs_logged(log)]  # batch k is worker k % 2's
            return shares.count(0) >= runs and shares.count(1) >= runs

        wait_for(lambda: each_worker_streamed(8), "8 runs of each worker in the runs log")
        os.kill(workers[0], signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 7, stderr.decode()
    assert b"lost: killed by SIGKILL" in stderr
    assert b"Traceback" not in stderr
    document = orjson.loads(out.read_bytes())
    runs = document["runs"]
    assert "workers lost" in document["stop_reason"]
    # The survivor ran its whole half (8 batches of 2), the lost one what it streamed before the kill.
    assert runs["completed"] >= 16 + 8
    assert runs["completed"] + runs["open"] + runs["failed"] <= 32
    runs_log = [orjson.loads(line) for line in (tmp_path / "results.runs.jsonl").read_bytes().splitlines()]
    assert sum(line["type"] == "run" for line in runs_log) == len(document["run_records"])
    assert b"results:" in stdout


# ---------------------------------------------------------------------------------------------- Dask


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as local:
        yield local.scheduler_address


@pytest.mark.e2e
def test_a_dask_cluster_runs_the_same_workers_and_merges_to_the_truth(cluster: str) -> None:
    outcome = _run(_profile(), Scale(workers=None, cluster=cluster, lead_s=2.0))
    _check_against_truth(outcome, batches=6)


@pytest.mark.e2e
def test_a_task_dask_runs_again_starts_nothing(cluster: str) -> None:
    from distributed import Client, Queue

    from stressor.distributed.cluster import REFUSED, _dask_task
    from stressor.distributed.worker import WorkerSpec
    from stressor.shares import Share
    from stressor.sim.server import SimulatorProcess, fetch_truth

    async def twice() -> tuple[list[str], int]:
        config = SimConfig.from_mapping({"api_key": KEY, "slots": 50})
        async with SimulatorProcess(config) as base_url:
            spec = WorkerSpec(_profile(0.4), Share(0, 1), base_url, KEY, time.time(), enforce_budget=False)
            with Client(cluster) as client:
                Queue("rerun-ticket-0", client=client).put(1)
                outcomes = [client.submit(_dask_task, spec, "rerun", pure=False).result(timeout=60) for _ in range(2)]
            return outcomes, len(await anyio.to_thread.run_sync(fetch_truth, base_url))

    outcomes, created = anyio.run(twice)
    assert outcomes == ["done", REFUSED]
    assert created == 3 * 3  # 0.4 s at 6/s: three batches of three, once


# ---------------------------------------------------------------------------------------------- the CLI

QUICK = (  # intervals of half a second: an abort threshold is checked at the end of each
    'grace = "5s"\ninterval = "0.5s"\n[target]\npoll_interval = "20ms"\n[batch]\nruns = 3\n'
    '[[stages]]\nduration = "DURATION"\nrate = "10/s"\n'
)


def _write(tmp_path: Path, duration: str) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(QUICK.replace("DURATION", duration))
    return path


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "--workers"),
        (["--workers", "many"], "whole number of workers"),
        (["--workers", "2", "--webhooks"], "--workers and --cluster follow runs by polling"),
    ],
)
def test_bad_worker_flags_end_in_one_sentence_and_exit_2(tmp_path: Path, flags: list[str], message: str) -> None:
    done = stressor_here("run", str(_write(tmp_path, "1s")), *flags)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_cluster_exits_3_in_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stressor.distributed import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 0.3)  # Dask tries to connect until then: 10 s in a run
    done = stressor_here("run", str(_write(tmp_path, "1s")), "--cluster", "tcp://127.0.0.1:9", real_time=True)
    assert done.returncode == 3, done.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.e2e
def test_ctrl_c_and_abort_thresholds_reach_every_worker(tmp_path: Path) -> None:
    profile, out = _write(tmp_path, "60s"), tmp_path / "r.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "stressor", "run", str(profile), "--workers", "2", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: len(runs_logged(tmp_path / "r.runs.jsonl")) >= 6, "runs of the workers in the runs log")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    results = orjson.loads(out.read_bytes())
    assert results["interrupted"] is True and results["runs"]["completed"] > 0
    assert results["elapsed_s"] < 20

    aborted = run_stressor(
        "run", str(profile), "--workers", "2", "--out", str(out), "--sim-failure-rate", "0.6",
        "-t", "failure_rate < 5% abort",
    )  # fmt: skip
    assert aborted.returncode == 5, aborted.stderr
    assert "STOPPED EARLY: threshold breached: failure_rate < 5% abort" in aborted.stdout
    assert orjson.loads(out.read_bytes())["elapsed_s"] < 20
