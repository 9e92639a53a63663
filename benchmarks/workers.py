"""Scale-out: the same lifecycle run by one stressor process and by ``--workers N``, side by side.

For each rate and each worker count, a fresh simulator starts in its own process and ``stressor run`` (the
CLI, as a user runs it) drives it with an open stage of batches; the script prints the runs completed per
second against the target, start lateness p99, queue-to-completion p50 / p99, HTTP requests per run, and the
CPU seconds of the whole stressor process tree (coordinator and workers, ``os.wait4``). Nothing is pinned:
the point is to let the workers spread over the cores. Loopback only; every run is bounded and stops itself.

    python benchmarks/workers.py                              # rates 100,300 batches/s; 1 and 2 workers
    python benchmarks/workers.py --rates 300 --workers 1,2,4 --duration 20
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from stressor.sim.config import SimConfig
from stressor.sim.server import SimulatorProcess

RUNS_PER_BATCH = 5
CALL_API_S = 200  # API seconds: 200 ms at the simulator's default time scale
POLL_INTERVAL_S = 0.25
GRACE_S = 5.0
DEADLINE_SLACK_S = 60.0


@dataclass(frozen=True, slots=True)
class Row:
    """One stressor run: its worker count, rate and figures."""

    workers: int
    rate: float
    completed: int
    open: int
    runs_per_s: float
    late_p99_ms: float | None
    q2c_p50_ms: float | None
    q2c_p99_ms: float | None
    requests_per_run: float | None
    cpu_s: float
    wall_s: float


def profile_text(rate: float, duration_s: float) -> str:
    return (
        f'name = "workers-{rate:g}"\ngrace = "{GRACE_S:g}s"\n'
        f'[target]\npoll_interval = "{POLL_INTERVAL_S * 1000:.0f}ms"\n'
        f"[batch]\nruns = {RUNS_PER_BATCH}\n"
        f'[[stages]]\nduration = "{duration_s:g}s"\nrate = "{rate:g}/s"\n'
        # The cost guard wants consent against any base URL; this one is a local simulator.
        "[cost]\nconsent_to_charge = true\nbudget_cents = 1e9\n"
    )


def _ms(measure: dict, key: str) -> float | None:
    value = measure.get(key)
    return None if value is None else value * 1000


def run_once(workers: int, rate: float, duration_s: float, work: Path) -> Row:
    profile = work / f"p-{rate:g}.toml"
    profile.write_text(profile_text(rate, duration_s))
    out = work / f"r-{workers}-{rate:g}.json"
    config = SimConfig.from_mapping(
        {"api_key": "sk_test_workers_bench", "slots": 100_000, "call_duration": f"fixed({CALL_API_S})"}
    )
    with SimulatorProcess(config) as base_url:
        command = [sys.executable, "-m", "stressor", "run", str(profile), "--base-url", base_url]
        command += ["--out", str(out), "--progress", "0"]
        if workers > 1:
            command += ["--workers", str(workers)]
        env = {**os.environ, "THUNDERPHONE_API_KEY": "sk_test_workers_bench"}
        began = time.monotonic()
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, status, usage = os.wait4(child.pid, 0)
        finally:
            if child.poll() is None:
                child.kill()
        wall = time.monotonic() - began
    if os.waitstatus_to_exitcode(status) not in (0, 7):
        error = child.stderr.read().decode() if child.stderr else ""
        raise RuntimeError(f"stressor exited {os.waitstatus_to_exitcode(status)}: {error[-2000:]}")
    document = orjson.loads(out.read_bytes())
    runs, measures = document["runs"], document["measures"]
    completed = runs["completed"]
    requests = sum(document["requests"].values())
    return Row(
        workers=workers,
        rate=rate,
        completed=completed,
        open=runs["open"],
        runs_per_s=completed / duration_s,
        late_p99_ms=_ms(measures["start_lateness"], "p99"),
        q2c_p50_ms=_ms(measures["queue_to_completion"], "p50"),
        q2c_p99_ms=_ms(measures["queue_to_completion"], "p99"),
        requests_per_run=requests / completed if completed else None,
        cpu_s=usage.ru_utime + usage.ru_stime,
        wall_s=wall,
    )


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,300", help="batch starts per second, comma-separated")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated (1: one process)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of the stage")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    counts = [int(w) for w in args.workers.split(",")]
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load}")
    print(
        f"lifecycle: batches of {RUNS_PER_BATCH}, calls {CALL_API_S} ms, poll every {POLL_INTERVAL_S:g} s, "
        f"{args.duration:g} s per rate; nothing pinned"
    )
    header = "workers rate/s target runs/s completed/s  open late p99 ms q2c p50 ms q2c p99 ms req/run  CPU s  wall s"
    print(header)
    with tempfile.TemporaryDirectory(prefix="workers-") as work:
        for rate in rates:
            for count in counts:
                row = run_once(count, rate, args.duration, Path(work))
                print(
                    f"{row.workers:>7} {row.rate:>6g} {row.rate * RUNS_PER_BATCH:>13g} {row.runs_per_s:>11.1f} "
                    f"{row.open:>5} {_fmt(row.late_p99_ms):>11} {_fmt(row.q2c_p50_ms):>10} "
                    f"{_fmt(row.q2c_p99_ms):>10} {_fmt(row.requests_per_run, '.2f'):>7} {row.cpu_s:>6.2f} "
                    f"{row.wall_s:>7.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
