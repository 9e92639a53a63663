"""Soak: does the client stay flat over a long steady run, live progress on?

A steady open profile runs against the simulator, which lives in its own process (``SimulatorProcess``), so
everything measured here is the client's: this process's engine, target, HTTP pool and progress display. Every
``--sample-every`` the script prints one line: elapsed time, the client's resident memory (``VmRSS`` from
``/proc/self/status``), its open sockets (entries of ``/proc/self/fd`` that are sockets), the asyncio tasks
alive (``len(asyncio.all_tasks())``), runs ended so far and runs in flight. At the end it gives a verdict on
flatness after the warm-up: the RSS slope in MB per 10 minutes (least squares), and how far tasks and sockets
rose above their level at the end of the warm-up.

The run is wired as ``stressor run`` wires it: ``runtime.run`` (uvloop when installed, the collector tuned for
the run), a ``Session`` with a runs log (in a temporary directory), so the engine streams each ended run to the
log and keeps none in memory, and live progress read through a ``ProgressWindow`` every ``--progress`` seconds
(its lines go to stderr, as the CLI's do; 0.5 is what a terminal's live table reads). Memory is called flat
when its least-squares slope after the warm-up stays under ``RSS_SLOPE_LIMIT_MB_PER_10_MIN``, whatever the runs
ended. At the end the results document is built as the CLI builds it (records and interval series read back
from the log), and the time and RSS that takes are printed.

    python benchmarks/soak.py                        # 5 minutes at 4 batches/s of 5 runs, progress every 5 s
    python benchmarks/soak.py --minutes 30 2>/dev/null  # half an hour, progress lines dropped

Loopback only; the run stops by itself after its duration and a short grace.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from stressor import runtime
from stressor.intervals import interval_series
from stressor.metrics import Metrics, Outcome
from stressor.profile import OpenLoad, Profile, parse_profile
from stressor.progress import ProgressWindow
from stressor.report.progress import progress_line
from stressor.report.results import build_results, write_results
from stressor.runlog import RunLog, stamps_of
from stressor.session import Session, SessionResult, Where
from stressor.sim.config import SimConfig
from stressor.sim.server import SimulatorProcess

API_KEY = "sk_test_soak"
RUNS_PER_BATCH = 5
STAGGER_S = 0.01
POLL_INTERVAL_S = 0.25
GRACE_S = 5.0
SHUTDOWN_SLACK_S = 10.0  # past the stage and the grace the engine is interrupted (its figures are kept)
SIM_SLOTS = 1_000  # far above rate x call length: the server never queues, the load stays steady
# Flatness limits after the warm-up (the verdict): tasks and sockets may wander with the runs in flight but
# must not climb; RSS may drift with the allocator, not with the runs ended.
RSS_SLOPE_LIMIT_MB_PER_10_MIN = 1.0
GROWTH_SLACK = 0.25  # tasks / sockets may end up to 25 % (and at least 10) above their warm-up level


@dataclass(frozen=True, slots=True)
class Sample:
    """One look at the client."""

    elapsed_s: float
    rss_kib: int
    sockets: int
    tasks: int
    ended: int
    in_flight: int


def rss_kib() -> int:
    """This process's resident set size in KiB (``VmRSS``), 0 where /proc has none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def open_sockets() -> int:
    """Open file descriptors of this process that are sockets."""
    count = 0
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return 0
    for name in names:
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:
            continue  # closed between the listing and the look (the listing's own descriptor, for one)
    return count


def ended_runs(metrics: Metrics) -> int:
    """Runs the client saw end (completed or failed) or gave up on (errored, rejected)."""
    outcomes = metrics.outcomes
    return sum(outcomes[o] for o in (Outcome.COMPLETED, Outcome.FAILED, Outcome.ERRORED, Outcome.REJECTED))


def build_profile(duration_s: float, rate: float) -> Profile:
    """One steady open stage: ``rate`` batches per second of ``RUNS_PER_BATCH`` runs."""
    data = {
        "name": "soak",
        "grace": GRACE_S,
        "target": {"poll_interval": POLL_INTERVAL_S},
        "batch": {"runs": RUNS_PER_BATCH, "stagger": STAGGER_S},
        "scenarios": {"prompts": ["Ask for the opening hours.", "Move an appointment."]},
        "stages": [{"name": "steady", "duration": duration_s, "rate": rate}],
    }
    return parse_profile(data, "soak.py", Path())


def profile_rate(profile: Profile) -> float:
    """Batches per second at the start of the profile's first stage (an open one)."""
    load = profile.stages[0].load
    assert isinstance(load, OpenLoad)
    return load.batches_per_s.start


def format_sample(sample: Sample) -> str:
    return (
        f"{sample.elapsed_s:>8.0f} {sample.rss_kib / 1024:>9.1f} {sample.sockets:>8} {sample.tasks:>6} "
        f"{sample.ended:>9} {sample.in_flight:>9}"
    )


HEADER = f"{'elapsed s':>8} {'RSS MiB':>9} {'sockets':>8} {'tasks':>6} {'ended':>9} {'in flight':>9}"


async def sample_every(session: Session, every_s: float, offset_s: float, samples: list[Sample]) -> None:
    """Print a sample on a fixed grid from the start (never drifting), forever (cancelled by the caller).

    The grid is shifted by ``offset_s`` (half the time between batches): on the batches' own grid every
    sample would fall just before a batch starts, when the runs of the last one have often all ended."""
    started = time.perf_counter()
    step = 0
    await anyio.sleep(offset_s)
    while True:
        sample = Sample(
            elapsed_s=time.perf_counter() - started - offset_s,
            rss_kib=rss_kib(),
            sockets=open_sockets(),
            tasks=len(asyncio.all_tasks()),
            ended=ended_runs(session.metrics),
            in_flight=session.governor.runs_in_flight,
        )
        samples.append(sample)
        print(format_sample(sample), flush=True)
        step += 1
        await anyio.sleep(max(0.0, started + offset_s + step * every_s - time.perf_counter()))


async def report_progress(session: Session, every_s: float) -> None:
    """The CLI's progress lines (``stressor run --progress``), to stderr, forever (cancelled by the caller)."""
    window = ProgressWindow()
    while True:
        await anyio.sleep(every_s)
        if session.engine is not None:
            print(progress_line(window.read(session.engine)), file=sys.stderr, flush=True)


async def soak(session: Session, every_s: float, progress_s: float, samples: list[Sample]) -> SessionResult:
    """Run the session against the simulator, sampling and showing progress as it goes."""
    profile = session.profile

    async def watchdog() -> None:
        await anyio.sleep(profile.duration_s + profile.grace_s + SHUTDOWN_SLACK_S)
        session.interrupt()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(sample_every, session, every_s, 0.5 / profile_rate(profile), samples)
        tasks.start_soon(watchdog)
        if progress_s:
            tasks.start_soon(report_progress, session, progress_s)
        outcome = await session.run()
        tasks.cancel_scope.cancel()
    result = outcome.engine
    final = Sample(
        elapsed_s=result.elapsed_s,
        rss_kib=rss_kib(),
        sockets=open_sockets(),
        tasks=len(asyncio.all_tasks()),
        ended=ended_runs(result.metrics),
        in_flight=session.governor.runs_in_flight,
    )
    print(format_sample(final) + "   (end, after the grace)", flush=True)
    return outcome


def write_results_as_the_cli_does(outcome: SessionResult, profile: Profile, directory: Path) -> str:
    """Build and write the results document from the runs log (as ``stressor run`` does); what it cost."""
    began = time.perf_counter()
    result = outcome.engine
    intervals = list(
        interval_series(
            stamps_of(result.records), result.samples, result.metrics.anchor, result.t0_ns, profile.interval_s
        )
    )
    document = build_results(result, profile, {"base_url": outcome.base_url}, intervals)
    write_results(directory / "results.json", document)
    took = time.perf_counter() - began
    return (
        f"results: {len(document.run_records)} run records and {len(intervals)} intervals read back from the "
        f"runs log and written in {took:.1f} s; RSS after {rss_kib() / 1024:.1f} MiB"
    )


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var


def verdict(samples: list[Sample], warmup_s: float) -> list[str]:
    """Lines saying whether RSS, tasks and sockets stayed flat after the warm-up."""
    steady = [s for s in samples if s.elapsed_s >= warmup_s]
    if len(steady) < 3:
        return [f"verdict: not enough samples after the {warmup_s:g} s warm-up ({len(steady)}; need 3)"]
    minutes = [s.elapsed_s / 60 for s in steady]
    rss_mib = [s.rss_kib / 1024 for s in steady]
    rss_mb_per_10_min = slope(minutes, [s.rss_kib * 1024 / 1e6 for s in steady]) * 10
    ended_span = steady[-1].ended - steady[0].ended
    # the slope against runs ended, not the two end points: one sample's noise must not decide
    per_run_kib = slope([float(s.ended) for s in steady], [s.rss_kib for s in steady])
    first = steady[0]
    task_growth = max(s.tasks for s in steady) - first.tasks
    socket_growth = max(s.sockets for s in steady) - first.sockets
    task_limit = max(10, round(first.tasks * GROWTH_SLACK))
    socket_limit = max(10, round(first.sockets * GROWTH_SLACK))
    flat_rss = rss_mb_per_10_min < RSS_SLOPE_LIMIT_MB_PER_10_MIN
    flat_tasks = task_growth <= task_limit
    flat_sockets = socket_growth <= socket_limit
    span_min = minutes[-1] - minutes[0]
    lines = [
        f"after the {warmup_s:g} s warm-up ({len(steady)} samples over {span_min:.1f} min, {ended_span} runs ended):",
        f"  RSS {rss_mib[0]:.1f} -> {rss_mib[-1]:.1f} MiB, slope {rss_mb_per_10_min:+.2f} MB per 10 min (limit "
        f"{RSS_SLOPE_LIMIT_MB_PER_10_MIN:g}), {per_run_kib:+.3f} KiB per run ended: "
        + ("flat" if flat_rss else "GROWING"),
        f"  tasks {first.tasks} at the warm-up's end, max {first.tasks + task_growth} (+{task_growth}; "
        f"limit +{task_limit}): {'flat' if flat_tasks else 'GROWING'}",
        f"  sockets {first.sockets} at the warm-up's end, max {first.sockets + socket_growth} (+{socket_growth}; "
        f"limit +{socket_limit}): {'flat' if flat_sockets else 'GROWING'}",
    ]
    flat = flat_rss and flat_tasks and flat_sockets
    lines.append(f"verdict: {'FLAT' if flat else 'NOT FLAT'}")
    return lines


def positive(text: str) -> float:
    """A number flag that must be above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than zero")
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=positive, default=5.0, help="length of the steady stage (5)")
    parser.add_argument("--rate", type=positive, default=4.0, help=f"batches of {RUNS_PER_BATCH} runs per second (4)")
    parser.add_argument("--sample-every", type=positive, default=15.0, help="seconds between samples (15)")
    parser.add_argument(
        "--warmup", type=positive, default=None, help="seconds left out of the verdict (120; at most a quarter)"
    )
    parser.add_argument(
        "--progress", type=float, default=5.0, help="seconds between progress lines on stderr (5, as the CLI; 0: none)"
    )
    args = parser.parse_args()
    if args.progress < 0:
        parser.error("--progress must be 0 or more")
    args.duration = args.minutes * 60
    if args.warmup is None:
        args.warmup = min(120.0, args.duration / 4)
    return args


def commit() -> str:
    """The checkout's commit, and whether its tracked files differ from it ("unknown" outside git)."""
    here = Path(__file__).resolve().parent
    try:
        head, dirty = (
            subprocess.run(["git", *command], cwd=here, capture_output=True, text=True, check=False)
            for command in (["rev-parse", "--short", "HEAD"], ["status", "--porcelain", "-uno"])
        )
    except OSError:
        return "unknown"
    if head.returncode:
        return "unknown"
    return head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")


def main() -> None:
    args = parse_args()
    profile = build_profile(args.duration, args.rate)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"soak: {args.duration:g} s at {args.rate:g} batches/s of {RUNS_PER_BATCH} runs "
        f"({args.rate * RUNS_PER_BATCH:g} runs/s), calls lognormal(45,0.3) API s at time scale 0.001, "
        f"poll interval {POLL_INTERVAL_S:g} s, a sample every {args.sample_every:g} s, warm-up {args.warmup:g} s, "
        + (f"progress every {args.progress:g} s" if args.progress else "no progress")
    )
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, loop {runtime.loop_for()}, "
        f"load average {load}; commit {commit()}"
    )
    config = SimConfig.from_text(slots=SIM_SLOTS, seed=1)
    samples: list[Sample] = []
    with SimulatorProcess(config) as base_url, tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        print(f"simulator: {base_url} (pid in its own process); client pid {os.getpid()}", flush=True)
        print(HEADER, flush=True)
        runs_log = RunLog(Path(scratch) / "soak.runs.jsonl")
        session = Session(profile, Where(base_url, API_KEY), enforce_budget=False, runs_log=runs_log)
        cpu_before = time.process_time()
        try:
            outcome = runtime.run(soak, session, args.sample_every, args.progress, samples)
        finally:
            runs_log.close()
        cpu_s = time.process_time() - cpu_before
        written = write_results_as_the_cli_does(outcome, profile, Path(scratch))
    result = outcome.engine
    outcomes = result.metrics.outcomes
    print()
    print(
        f"runs: planned {result.metrics.planned_runs}, completed {outcomes[Outcome.COMPLETED]}, "
        f"failed {outcomes[Outcome.FAILED]}, errored {outcomes[Outcome.ERRORED]}, open {outcomes[Outcome.OPEN]}; "
        f"requests {sum(result.metrics.requests.values())}; client CPU {cpu_s:.1f} s"
    )
    print(written)
    for line in verdict(samples, args.warmup):
        print(line)


if __name__ == "__main__":
    main()
