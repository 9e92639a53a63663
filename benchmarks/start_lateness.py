"""Start lateness of the engine: how late, after its due time, does each batch's request leave?

For each rate of batch starts per second, the simulator runs in its own process (pinned to core 1 when the
machine has two or more, the client to core 0), and the engine drives an open profile against it in this
process for ``--duration`` seconds: batches of 1 run, stagger 0, calls of 5 ms (``fixed(5)`` API seconds at
time scale 0.001), slots far above what the load needs, and a poll interval (1 s by default, the real API's
cadence) at which each batch is polled about once, so polling is no larger than submitting.

Start lateness is ``metrics.recorders[Measure.START_LATENESS]``: batch due (plan) -> request sent. The goal
is p99 < 2 ms at 200 starts/s. Loopback only; every run stops by itself (stages plus a short grace).

Each rate runs as ``stressor run`` runs (``stressor.runtime.run``): on uvloop when it is installed
(``--loop asyncio`` for the standard loop) and with the garbage collector tuned for the run
(``--no-gc-tuning`` to leave it as Python sets it). ``waited s`` is the time the client was ready to run while
its core ran another process (``/proc/self/schedstat``): on a shared machine, lateness with a large
``waited s`` is the machine's, not the generator's.

    python benchmarks/start_lateness.py                          # rates 50,200,500; 10 s each
    python benchmarks/start_lateness.py --rates 200 --duration 5 --poll-interval 30
    python benchmarks/start_lateness.py --engine-only                  # the pacer alone: no simulator, no HTTP
    python benchmarks/start_lateness.py --rates 100,300 --no-precise-wake   # the pacer's yields, not the kernel's timer
    python benchmarks/start_lateness.py --loop asyncio --no-gc-tuning --no-precise-wake --wake-early-ms 0  # pre-issue-7
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from pinning import pin, usable_cores

from stressor.engine import WAKE_EARLY_NS, Engine, EngineResult
from stressor.governor import Governor
from stressor.metrics import Measure, Metrics
from stressor.profile import Profile, parse_profile
from stressor.runtime import loop_for
from stressor.runtime import run as run_async
from stressor.sim.config import SimConfig
from stressor.sim.server import SimulatorProcess
from stressor.targets.base import BatchOrder, RunEnd, Submission, SubmittedRun
from stressor.targets.testcalls.target import TestCallsTarget
from stressor.timestamps import NS_PER_S, ClockAnchor

GOAL_RATE = 200.0
GOAL_P99_S = 0.002
CALL_DURATION = "fixed(5)"  # API seconds: 5 ms at the default time scale
SIM_SLOTS = 10_000  # far above rate x call length: the server never queues
CLIENT_CORE = 0
SIMULATOR_CORE = 1
API_KEY = "sk_test_benchmark"
SHUTDOWN_SLACK_S = 5.0  # past stages and grace, a rate is interrupted (its figures are kept)


class SendLog(Metrics):
    """Metrics that also keep when each batch's request left, to count the starts inside the window."""

    def __init__(self, anchor: ClockAnchor) -> None:
        super().__init__(anchor)
        self.sent_ns: list[int] = []

    def record_batch_start(self, due_ns: int, sent_ns: int, **slices: Any) -> None:
        super().record_batch_start(due_ns, sent_ns, **slices)
        self.sent_ns.append(sent_ns)


class InstantTarget:
    """A target without I/O: runs exist as soon as they are asked for and end at once (``--engine-only``).

    What is left of start lateness against it is the engine's own: the pacer's sleeps and the batch tasks."""

    def __init__(self) -> None:
        self._ids = itertools.count()

    async def check(self) -> None:
        """Nothing to check."""

    async def submit(self, order: BatchOrder) -> Submission:
        await anyio.lowlevel.checkpoint()
        runs = tuple(SubmittedRun(f"run-{next(self._ids)}", i, None, None) for i in range(len(order.prompts)))
        return Submission(batch_id=None, runs=runs)

    async def follow(self, submission: Submission, on_end: Callable[[RunEnd], None]) -> None:
        for run in submission.runs:
            on_end(RunEnd(run.run_id, "completed", time.perf_counter_ns(), None, None))

    def clock_offset(self) -> None:
        return None

    async def aclose(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True, slots=True)
class Row:
    """The figures of one rate."""

    rate: float
    duration_s: float
    batches: int
    sent_in_window: int
    p50_s: float
    p99_s: float
    max_s: float
    dispatch_p99_s: float
    cpu_s: float
    waited_s: float
    requests: int
    open_runs: int
    lost_runs: int

    @property
    def achieved_rate(self) -> float:
        """Batch requests sent per second inside the stage (a start later than the stage's end is not)."""
        return self.sent_in_window / self.duration_s


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="50,200,500", help="batch starts per second, comma-separated")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per rate")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds between polls of a batch")
    parser.add_argument(
        "--engine-only", action="store_true", help="no simulator, no HTTP: a target that answers at once"
    )
    parser.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop, as stressor.runtime.run chooses it (auto: uvloop when installed)",
    )
    parser.add_argument(
        "--wake-early-ms",
        type=float,
        default=WAKE_EARLY_NS / 1e6,
        help="without the precise timer: the pacer's timer is set this early (at most), then it yields to the loop "
        "until the due time (0: sleep only)",
    )
    parser.add_argument(
        "--no-precise-wake",
        action="store_true",
        help="wake the pacer on the loop's own timers (and its yields), not the kernel's timer (stressor.wake)",
    )
    parser.add_argument(
        "--no-gc-tuning", action="store_true", help="leave the garbage collector as Python sets it (no freeze)"
    )
    parser.add_argument(
        "--max-connections", type=int, default=None, help="size of the client's connection pool (default: the target's)"
    )
    args = parser.parse_args()
    args.rates = [float(rate) for rate in args.rates.split(",") if rate.strip()]
    positive = [args.duration, args.poll_interval, 1 if args.max_connections is None else args.max_connections]
    if not args.rates or min(args.rates) <= 0 or min(positive) <= 0:
        parser.error("rates, duration, poll interval and max connections must be positive")
    return args


def build_profile(rate: float, duration_s: float, poll_interval_s: float) -> Profile:
    """Open model, one stage at a constant rate of single-run batches; grace covers one poll and the call."""
    data = {
        "name": f"start-lateness-{rate:g}",
        "grace": poll_interval_s + 2.0,
        "target": {"poll_interval": poll_interval_s},
        "batch": {"runs": 1, "stagger": 0},
        "scenarios": {"prompts": ["Ask for the opening hours."]},
        "stages": [{"name": "steady", "duration": duration_s, "rate": rate}],
    }
    return parse_profile(data, "start_lateness.py", Path())


async def run_bounded(engine: Engine, limit_s: float) -> EngineResult:
    """Run the engine, interrupting it (results kept) if it has not ended ``limit_s`` after it began."""

    async def watchdog() -> None:
        await anyio.sleep(limit_s)
        engine.interrupt()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(watchdog)
        result = await engine.run()
        tasks.cancel_scope.cancel()
    return result


def time_limit_s(profile: Profile) -> float:
    """How long one rate may take at most: its stages, its grace and some slack for the shutdown."""
    return profile.duration_s + profile.grace_s + SHUTDOWN_SLACK_S


async def drive(
    profile: Profile, base_url: str, max_connections: int | None = None, pacer: Mapping[str, Any] | None = None
) -> EngineResult:
    """Run the engine against the simulator, wired as ``stressor run`` wires it."""
    metrics = SendLog(ClockAnchor.now())
    governor = Governor(profile.limits)
    pool = {} if max_connections is None else {"max_connections": max_connections}
    target = TestCallsTarget(
        base_url,
        API_KEY,
        metrics,
        governor=governor,
        poll_interval_s=profile.target.poll_interval_s,
        timeout_s=profile.target.request_timeout_s,
        **pool,
    )
    try:
        await target.check()
        engine = Engine(profile, target, metrics=metrics, governor=governor, **(pacer or {}))
        return await run_bounded(engine, time_limit_s(profile))
    finally:
        with anyio.move_on_after(SHUTDOWN_SLACK_S, shield=True):
            await target.aclose()


async def drive_engine_only(profile: Profile, pacer: Mapping[str, Any] | None = None) -> EngineResult:
    """Run the engine against ``InstantTarget``: the pacer and the batch tasks alone."""
    metrics = SendLog(ClockAnchor.now())
    governor = Governor(profile.limits)
    engine = Engine(profile, InstantTarget(), metrics=metrics, governor=governor, **(pacer or {}))
    return await run_bounded(engine, time_limit_s(profile))


def row_of(rate: float, duration_s: float, timed: tuple[EngineResult, float, float]) -> Row:
    """The figures of one rate from the engine's result and the client's CPU seconds."""
    result, cpu_s, waited_s = timed
    metrics = result.metrics
    assert isinstance(metrics, SendLog)
    window_end_ns = result.t0_ns + round(duration_s * NS_PER_S)
    lateness = metrics.recorders[Measure.START_LATENESS].summary()
    dispatch = metrics.dispatch_lag.summary()
    return Row(
        rate=rate,
        duration_s=duration_s,
        batches=lateness.count,
        sent_in_window=sum(1 for sent in metrics.sent_ns if sent <= window_end_ns),
        p50_s=lateness.percentiles_s.get(50.0, 0.0),
        p99_s=lateness.percentiles_s.get(99.0, 0.0),
        max_s=lateness.max_s or 0.0,
        dispatch_p99_s=dispatch.percentiles_s.get(99.0, 0.0),
        cpu_s=cpu_s,
        waited_s=waited_s,
        requests=sum(metrics.requests.values()),
        open_runs=metrics.outcomes["open"],
        lost_runs=metrics.planned_runs - len(result.records),
    )


def run_queue_wait_s() -> float:
    """Seconds this process's main thread has spent runnable but not running (another process had its core:
    ``/proc/self/schedstat``); 0 where the kernel does not say."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / NS_PER_S
    except (OSError, IndexError, ValueError):
        return 0.0


def timed(run: Callable[[], EngineResult]) -> tuple[EngineResult, float, float]:
    """The engine's result, the CPU seconds this process spent on it and the seconds it waited for a core."""
    cpu_before, waited_before = time.process_time(), run_queue_wait_s()
    result = run()
    return result, time.process_time() - cpu_before, run_queue_wait_s() - waited_before


def run_with(args: argparse.Namespace, fn: Callable[..., Awaitable[EngineResult]], *fn_args: object) -> EngineResult:
    """One rate on the event loop and with the collector settings ``stressor run`` uses (``stressor.runtime``)."""
    return run_async(fn, *fn_args, loop=args.loop, tune_gc=not args.no_gc_tuning)


def pacer_options(args: argparse.Namespace) -> dict[str, Any]:
    """The engine's pacer options from ``--no-precise-wake`` and ``--wake-early-ms``."""
    return {"precise_wake": not args.no_precise_wake, "wake_early_ns": round(args.wake_early_ms * 1e6)}


def run_rate(rate: float, args: argparse.Namespace, cores: set[int]) -> Row:
    """One rate against a fresh simulator pinned away from the client (or against no I/O at all)."""
    profile = build_profile(rate, args.duration, args.poll_interval)
    if args.engine_only:
        pacer = pacer_options(args)
        return row_of(rate, args.duration, timed(lambda: run_with(args, drive_engine_only, profile, pacer)))
    config = SimConfig.from_text(slots=SIM_SLOTS, call_duration=CALL_DURATION, seed=1)
    simulator = SimulatorProcess(config)
    base_url = simulator.start()
    try:
        assert simulator.pid is not None
        pinning = pin(simulator.pid, SIMULATOR_CORE, cores)
        print(f"  rate {rate:g}/s: simulator pid {simulator.pid} {pinning}", flush=True)
        figures = timed(lambda: run_with(args, drive, profile, base_url, args.max_connections, pacer_options(args)))
    finally:
        simulator.stop()
    return row_of(rate, args.duration, figures)


def ms(seconds: float) -> str:
    """Seconds as milliseconds with two decimals."""
    return f"{seconds * 1e3:.2f}"


LEGEND = """\
  p50/p99/max: start lateness, batch due (plan) -> request sent; dispatch: due -> the batch task ran
  achieved/s: requests sent inside the stage per second; client CPU s: this process, grace included
  waited s: time the client was ready to run but its core ran another process (a shared machine's noise)
  requests: all HTTP requests (submits, batch polls, list pages); open: runs still open after the grace
  lost: planned runs that ended in no outcome (their create request was cut off at the end of the grace)"""


def format_table(rows: list[Row]) -> str:
    """The figures of every rate, one line each, under a header."""
    header = (
        f"{'rate/s':>7} {'batches':>8} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'dispatch p99 ms':>16} "
        f"{'achieved/s':>10} {'client CPU s':>12} {'waited s':>8} {'requests':>9} {'open':>5} {'lost':>5}"
    )
    lines = [header]
    for row in rows:
        lines.append(
            f"{row.rate:>7g} {row.batches:>8} {ms(row.p50_s):>7} {ms(row.p99_s):>7} {ms(row.max_s):>7} "
            f"{ms(row.dispatch_p99_s):>16} {row.achieved_rate:>10.1f} {row.cpu_s:>12.2f} {row.waited_s:>8.2f} "
            f"{row.requests:>9} {row.open_runs:>5} {row.lost_runs:>5}"
        )
    return "\n".join(lines)


def goal_verdict(rows: list[Row], engine_only: bool) -> str:
    """Whether the goal was met, in one line."""
    goal = f"goal p99 < {ms(GOAL_P99_S)} ms at {GOAL_RATE:g} starts/s{' (engine only)' if engine_only else ''}"
    at_goal = [row for row in rows if row.rate == GOAL_RATE]
    if not at_goal:
        return f"{goal}: not measured (add {GOAL_RATE:g} to --rates)"
    p99 = at_goal[0].p99_s
    return f"{goal}: {'MET' if p99 < GOAL_P99_S else 'MISSED'} (p99 = {ms(p99)} ms)"


def main() -> None:
    args = parse_args()
    if args.engine_only:
        print(f"start lateness: {args.duration:g} s per rate, batches of 1 run, engine only (no simulator, no HTTP)")
    else:
        print(
            f"start lateness: {args.duration:g} s per rate, batches of 1 run, calls {CALL_DURATION} API s "
            f"(time scale 0.001), {SIM_SLOTS} slots, poll interval {args.poll_interval:g} s, "
            f"connection pool {args.max_connections or 'default'}"
        )
    cores = usable_cores()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    tuning = "as Python sets it" if args.no_gc_tuning else "tuned (stressor.runtime.tuned_gc)"
    wake = "the loop's timers and yields" if args.no_precise_wake else "the kernel's timer where there is one"
    print(f"event loop: {loop_for(args.loop)}; garbage collector: {tuning}; pacer wakes on {wake}")
    print(f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load}")
    print(f"client pid {os.getpid()} {pin(os.getpid(), CLIENT_CORE, cores)}", flush=True)
    rows = [run_rate(rate, args, cores) for rate in args.rates]
    print()
    print(format_table(rows))
    print(LEGEND)
    print()
    print(goal_verdict(rows, args.engine_only))


if __name__ == "__main__":
    main()
