"""Runs in flight in one stressor process, and the client memory each one costs.

A closed profile (``in_flight`` runs, batches of 20, stagger 0) drives the simulator (its own process, pinned
to core 1; the client, this process, to core 0) with more slots than runs and calls far longer than the stage,
so every run stays ``in_progress`` from its create to the end: the plateau holds ``in_flight`` runs. Batches
are polled every ``--poll-interval``; with calls this long a poll never finds a run ended, so the run list is
never read.

Two passes, each against a fresh simulator:

1. **RSS**: ``VmRSS`` of this process just before the engine starts (imports done, the target built and its
   connection pool opened by ``target.check()``) and every ``--sample-every`` seconds after; the plateau is the
   samples taken while the client holds the full ``in_flight``. KiB per in-flight run = (largest plateau RSS -
   RSS before) / runs in flight. The simulator's own count (``in_progress`` + ``queued`` from ``/_sim/stats``)
   is read at the plateau as a cross-check.
2. **tracemalloc** (skip with ``--no-trace``): the same run with ``tracemalloc`` on; a snapshot before the
   engine starts and one at the plateau; the growth of traced Python memory per in-flight run and the lines
   that allocated most of it (``file:line``, size, count). tracemalloc slows allocation and adds its own
   memory, so its pass gives the attribution, not the RSS figure.

Goal: at least 10,000 runs in flight with under 2 KiB of client memory per in-flight run.

    python benchmarks/in_flight.py                       # 10,000 in flight, both passes (~1 minute)
    python benchmarks/in_flight.py --in-flight 20000 --no-trace
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
from pinning import pin, usable_cores

from stressor.engine import Engine
from stressor.governor import Governor
from stressor.metrics import Metrics
from stressor.profile import Profile, parse_profile
from stressor.sim.config import SimConfig
from stressor.sim.server import SimulatorProcess
from stressor.targets.from_profile import build_target
from stressor.timestamps import ClockAnchor

CLIENT_CORE = 0
SIMULATOR_CORE = 1
API_KEY = "sk_test_benchmark"
RUNS_PER_BATCH = 20
GOAL_RUNS = 10_000
GOAL_KIB_PER_RUN = 2.0
SHUTDOWN_SLACK_S = 20.0  # past the stage and grace the engine is interrupted (10,000 open runs take a moment)
TOP_LINES = 12


def rss_kib() -> int:
    """This process's resident set size in KiB (``VmRSS``), 0 where /proc has none."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at the client during the stage."""

    elapsed_s: float
    rss_kib: int
    in_flight: int  # the engine's count: runs submitted (or being submitted) and not seen to end
    traced_kib: float = 0.0  # tracemalloc's current traced size (tracemalloc pass only)


@dataclass
class Pass:
    """What one pass saw."""

    before_rss_kib: int = 0
    before_traced_kib: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    server_in_flight: int = 0  # in_progress + queued at the simulator, read at the last plateau sample
    plateau_snapshot: tracemalloc.Snapshot | None = None
    before_snapshot: tracemalloc.Snapshot | None = None
    open_at_end: int = 0
    errored: int = 0

    def plateau(self, in_flight: int) -> list[Sample]:
        """Samples taken while the client held the full number of runs in flight."""
        return [sample for sample in self.samples if sample.in_flight >= in_flight]


def build_profile(in_flight: int, duration_s: float, poll_interval_s: float) -> Profile:
    """One closed stage of ``in_flight`` runs in batches of 20; the grace is short since no run can end."""
    data = {
        "name": f"in-flight-{in_flight}",
        "grace": 0.5,
        "target": {"poll_interval": poll_interval_s},
        "batch": {"runs": RUNS_PER_BATCH, "stagger": 0},
        "scenarios": {"prompts": ["Ask for the opening hours."]},
        "stages": [{"name": "hold", "duration": duration_s, "in_flight": in_flight}],
    }
    return parse_profile(data, "in_flight.py", Path())


async def server_in_flight(base_url: str) -> int:
    """Runs the simulator holds as in progress or queued."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0, trust_env=False) as client:
        stats = (await client.get("/_sim/stats")).json()
    return int(stats["in_progress"]) + int(stats["queued"])


async def drive(profile: Profile, base_url: str, args: argparse.Namespace, trace: bool) -> Pass:
    """Run the engine as ``stressor run`` wires it, sampling RSS (and traced memory) as it goes."""
    seen = Pass()
    metrics = Metrics(ClockAnchor.now())
    governor = Governor(profile.limits)
    target = build_target(profile, base_url, API_KEY, metrics, governor)
    try:
        await target.check()
        engine = Engine(profile, target, metrics=metrics, governor=governor)
        seen.before_rss_kib = rss_kib()
        if trace:
            seen.before_snapshot = tracemalloc.take_snapshot()
            seen.before_traced_kib = tracemalloc.get_traced_memory()[0] / 1024

        async def sampler() -> None:
            started = time.perf_counter()
            step = 0
            while True:
                step += 1
                await anyio.sleep(max(0.0, started + step * args.sample_every - time.perf_counter()))
                traced = tracemalloc.get_traced_memory()[0] / 1024 if trace else 0.0
                sample = Sample(time.perf_counter() - started, rss_kib(), engine.runs_in_flight, traced)
                seen.samples.append(sample)
                full = sample.in_flight >= args.in_flight
                if full:  # the last plateau sample's count is kept: by then every create has been answered
                    seen.server_in_flight = await server_in_flight(base_url)
                # the snapshot is taken late in the plateau, when every run has been answered and polled
                if trace and full and seen.plateau_snapshot is None and sample.elapsed_s >= args.duration * 0.6:
                    seen.plateau_snapshot = tracemalloc.take_snapshot()

        async def watchdog() -> None:
            await anyio.sleep(profile.duration_s + profile.grace_s + SHUTDOWN_SLACK_S)
            engine.interrupt()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(sampler)
            tasks.start_soon(watchdog)
            result = await engine.run()
            tasks.cancel_scope.cancel()
        seen.open_at_end = result.metrics.outcomes["open"]
        seen.errored = result.metrics.outcomes["errored"]
        return seen
    finally:
        with anyio.move_on_after(SHUTDOWN_SLACK_S, shield=True):
            await target.aclose()


def run_pass(args: argparse.Namespace, cores: set[int], trace: bool) -> Pass:
    """One pass against a fresh simulator with slots for every run and calls longer than the stage."""
    call_api_s = (args.duration + 60.0) * 1000  # API seconds: at time scale 0.001, a minute past the stage
    config = SimConfig.from_text(slots=args.in_flight + 1000, call_duration=f"fixed({call_api_s:g})", seed=1)
    simulator = SimulatorProcess(config)
    base_url = simulator.start()
    try:
        assert simulator.pid is not None
        print(f"  simulator {base_url} {pin(simulator.pid, SIMULATOR_CORE, cores)}", flush=True)
        profile = build_profile(args.in_flight, args.duration, args.poll_interval)
        if trace:
            tracemalloc.start(1)
        try:
            return anyio.run(drive, profile, base_url, args, trace)
        finally:
            if trace:
                tracemalloc.stop()
    finally:
        simulator.stop()


def report_rss(seen: Pass, in_flight: int) -> bool:
    """Print the RSS pass; True when the goal was met."""
    plateau = seen.plateau(in_flight)
    print()
    print(f"{'elapsed s':>9} {'RSS MiB':>8} {'in flight':>9}")
    for sample in seen.samples:
        print(f"{sample.elapsed_s:>9.1f} {sample.rss_kib / 1024:>8.1f} {sample.in_flight:>9}")
    print(f"RSS before the runs start: {seen.before_rss_kib / 1024:.1f} MiB")
    if not plateau:
        print(f"the client never held {in_flight} runs in flight: no plateau, goal MISSED")
        return False
    peak = max(sample.rss_kib for sample in plateau)
    per_run = (peak - seen.before_rss_kib) / in_flight
    print(
        f"plateau: {len(plateau)} samples at {in_flight} runs in flight (the simulator counted "
        f"{seen.server_in_flight} in progress or queued); largest RSS {peak / 1024:.1f} MiB"
    )
    print(f"runs open at the end (no call can end within the stage): {seen.open_at_end}; errored {seen.errored}")
    met = in_flight >= GOAL_RUNS and per_run < GOAL_KIB_PER_RUN
    print(
        f"client memory per in-flight run: {per_run:.2f} KiB of RSS "
        f"(goal: >= {GOAL_RUNS} in flight under {GOAL_KIB_PER_RUN:g} KiB each): {'MET' if met else 'MISSED'}"
    )
    return met


def short_path(filename: str) -> str:
    """A source path from the package's root: ``stressor/engine.py``, ``aiohttp/client_proto.py``,
    ``dataclasses.py`` (the standard library), wherever the files are installed."""
    path = Path(filename)
    for root in ("stressor", "site-packages"):
        if root in path.parts[:-1]:
            at = len(path.parts) - 1 - path.parts[::-1].index(root)
            return "/".join(path.parts[at if root == "stressor" else at + 1 :])
    return path.name


def report_trace(seen: Pass, in_flight: int) -> None:
    """Print the tracemalloc pass: traced growth per run and the lines behind it."""
    print()
    if seen.plateau_snapshot is None or seen.before_snapshot is None:
        print("tracemalloc: no snapshot at the plateau (the client never held the runs in flight long enough)")
        return
    growth = seen.plateau_snapshot.compare_to(seen.before_snapshot, "lineno")
    total = sum(stat.size_diff for stat in growth)
    print(
        f"tracemalloc: traced Python memory grew {total / 1024 / 1024:.1f} MiB from before the runs to the "
        f"plateau: {total / 1024 / in_flight:.2f} KiB per in-flight run. Largest growth by line:"
    )
    print(f"{'KiB':>9} {'B/run':>7} {'blocks':>8}  where")
    for stat in growth[:TOP_LINES]:
        frame = stat.traceback[0]
        where = f"{short_path(frame.filename)}:{frame.lineno}"
        print(f"{stat.size_diff / 1024:>9.1f} {stat.size_diff / in_flight:>7.0f} {stat.count_diff:>8}  {where}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--in-flight", type=int, default=GOAL_RUNS, help="runs to hold in flight")
    parser.add_argument("--duration", type=float, default=12.0, help="seconds of the closed stage")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls of a batch")
    parser.add_argument("--sample-every", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc pass")
    args = parser.parse_args()
    if args.in_flight < RUNS_PER_BATCH or min(args.duration, args.poll_interval, args.sample_every) <= 0:
        parser.error(f"--in-flight must be at least {RUNS_PER_BATCH}; durations must be positive")
    return args


def main() -> None:
    args = parse_args()
    cores = usable_cores()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"in flight: closed stage of {args.in_flight} runs in batches of {RUNS_PER_BATCH} for {args.duration:g} s, "
        f"poll interval {args.poll_interval:g} s, calls longer than the stage"
    )
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load}")
    print(f"client pid {os.getpid()} {pin(os.getpid(), CLIENT_CORE, cores)}", flush=True)
    print("pass 1: RSS", flush=True)
    report_rss(run_pass(args, cores, trace=False), args.in_flight)
    if not args.no_trace:
        print()
        print("pass 2: tracemalloc", flush=True)
        report_trace(run_pass(args, cores, trace=True), args.in_flight)


if __name__ == "__main__":
    main()
