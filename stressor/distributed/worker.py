"""The worker: one share of a run, in its own process (or a Dask worker's thread), reporting as it goes.

``run_worker`` is the one function every backend runs. It waits for the shared start, runs the engine on its
share, and hands ``emit`` a ``Snapshot`` at the end of every interval and a final one when it ends. Between
snapshots it asks ``control`` whether the coordinator wants it to stop (a breached threshold: no new batches,
runs in flight followed to their end) or to be interrupted (Ctrl-C: stop now).
"""

from __future__ import annotations

import itertools
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import anyio

from stressor import runtime
from stressor.distributed.snapshot import Snapshot, rebase
from stressor.engine import Engine, EngineResult
from stressor.governor import Governor
from stressor.intervals import Sample
from stressor.metrics import Measure, Metrics, RunRecord
from stressor.profile import Profile
from stressor.secrets import mask_secret
from stressor.shares import Share
from stressor.targets.from_profile import build_target
from stressor.timestamps import NS_PER_S, ClockAnchor

Command = Literal["run", "stop", "interrupt"]
CONTROL_EVERY_S = 0.2  # how often a worker asks whether to stop: the lag of a Ctrl-C or an abort


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What one worker needs: the whole profile and its share of it, where to send, and when to start."""

    profile: Profile
    share: Share
    base_url: str
    api_key: str
    start_at: float  # wall-clock epoch seconds, the same for every worker
    enforce_budget: bool
    trust_env: bool = True  # proxies from the environment (off for the embedded simulator)

    def __repr__(self) -> str:
        # masked: dask logs repr(run_spec)[:1000] when a task fails, and the key must not be in it
        return (
            f"WorkerSpec(profile={self.profile.name!r}, share={self.share!r}, base_url={self.base_url!r}, "
            f"api_key={mask_secret(self.api_key)!r}, start_at={self.start_at!r}, "
            f"enforce_budget={self.enforce_budget!r}, trust_env={self.trust_env!r})"
        )


class _Reporter:
    """Builds the worker's snapshots: the records that ended since the last one, cumulative counters."""

    def __init__(self, spec: WorkerSpec, metrics: Metrics, governor: Governor, start_ns: int) -> None:
        self.spec, self.metrics, self.governor, self.start_ns = spec, metrics, governor, start_ns
        self._ended: list[RunRecord] = []
        self._samples: list[Sample] = []

    def ended(self, record: RunRecord) -> None:
        """Told by the engine of each run as it ends."""
        self._ended.append(record)

    def sample(self, now_ns: int) -> None:
        governor = self.governor
        self._samples.append(
            Sample(
                t_s=(now_ns - self.start_ns) / NS_PER_S,
                requests=sum(self.metrics.requests.values()),
                runs_in_flight=governor.runs_in_flight,
                throttled_s=governor.throttle_wait_s + governor.server_pause_s,
            )
        )

    def snapshot(self, result: EngineResult | None = None) -> Snapshot:
        records, self._ended = self._ended, []
        samples, self._samples = self._samples, []
        metrics, governor = self.metrics, self.governor
        return Snapshot(
            worker=self.spec.share.index,
            final=result is not None,
            records=tuple(rebase(r, self.start_ns, 0) for r in records),
            samples=tuple(samples),
            planned_runs=metrics.planned_runs,
            submitted_runs=metrics.submitted_runs,
            cost_cents=metrics.cost_cents,
            requests=dict(metrics.requests),
            not_started=dict(metrics.not_started),
            start_lateness=metrics.recorders[Measure.START_LATENESS],
            submit_rtt=metrics.recorders[Measure.SUBMIT_RTT],
            dispatch_lag=metrics.dispatch_lag,
            governor=governor.report(),
            server_rate=governor.server_rate,
            runs_in_flight=governor.runs_in_flight,
            first_due_s=self._since_start(metrics.first_due_ns),
            last_due_s=self._since_start(metrics.last_due_ns),
            last_submit_s=self._since_start(metrics.last_submit_ns),
            never_due_runs=metrics.never_due_runs,
            plan_ran_s=metrics.plan_ran_s,
            ended_s=None if result is None else (result.ended_ns - self.start_ns) / NS_PER_S,
            interrupted=result is not None and result.interrupted,
            stop_reason=None if result is None else result.stop_reason,
            stop_cause=None if result is None else result.stop_cause,
        )

    def _since_start(self, ns: int | None) -> float | None:
        return None if ns is None else (ns - self.start_ns) / NS_PER_S


Emit = Callable[[bytes], None]


def run_worker(spec: WorkerSpec, emit: Emit, control: Callable[[], Command], *, own_process: bool = True) -> None:
    """Run one share of the profile to its end (blocking), emitting pickled snapshots (pickled at once, on
    the event loop, so that each is the state of one instant). ``emit`` and ``control`` may block (a Dask
    queue is a network call): they are called from a thread, never from the event loop. The garbage collector
    is tuned for the run only when the worker has its process to itself (``own_process``): its settings are
    the process's, shared by a Dask worker's other threads."""
    runtime.run(_work, spec, emit, control, tune_gc=own_process)


async def _work(spec: WorkerSpec, emit: Emit, control: Callable[[], Command]) -> None:
    profile = spec.share.profile(spec.profile)
    metrics = Metrics(ClockAnchor.now())
    governor = Governor(profile.limits, share=spec.share.fraction)
    target = build_target(profile, spec.base_url, spec.api_key, metrics, governor, trust_env=spec.trust_env)
    try:
        start_ns = ClockAnchor.now().to_mono_ns(spec.start_at)
        reporter = _Reporter(spec, metrics, governor, start_ns)
        engine = Engine(
            profile,
            target,
            metrics=metrics,
            governor=governor,
            enforce_budget=spec.enforce_budget,
            on_record=reporter.ended,
            share=spec.share,
            keep_records=False,  # every record goes out in a snapshot: the worker's memory stays flat
        )
        await anyio.sleep(max(0.0, (start_ns - time.perf_counter_ns()) / NS_PER_S))
        async with anyio.create_task_group() as helpers:
            helpers.start_soon(_report_intervals, reporter, profile, emit)
            helpers.start_soon(_obey, engine, control)
            result = await engine.run(start_ns)
            helpers.cancel_scope.cancel()
        reporter.sample(result.ended_ns)
        await anyio.to_thread.run_sync(emit, pickle.dumps(reporter.snapshot(result)))
    finally:
        await target.aclose()


async def _report_intervals(reporter: _Reporter, profile: Profile, emit: Emit) -> None:
    """A snapshot at the end of every interval, on a grid from the shared start (never drifting)."""
    interval_ns = round(profile.interval_s * NS_PER_S)
    for boundary in itertools.count(1):
        boundary_ns = reporter.start_ns + boundary * interval_ns
        await anyio.sleep(max(0.0, (boundary_ns - time.perf_counter_ns()) / NS_PER_S))
        reporter.sample(boundary_ns)
        # Shielded: the snapshot has taken the records that ended; the run's end cancelling this task before
        # the snapshot is handed over would lose them (and the final snapshot must come after it).
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(emit, pickle.dumps(reporter.snapshot()))


async def _obey(engine: Engine, control: Callable[[], Command]) -> None:
    while True:
        await anyio.sleep(CONTROL_EVERY_S)
        # Abandoned on cancel: the run's end must not wait for a slow answer from a cluster's scheduler.
        command = await anyio.to_thread.run_sync(control, abandon_on_cancel=True)
        if command == "interrupt":
            engine.interrupt()
            return
        if command == "stop":
            engine.stop("stopped by the coordinator", cause="threshold")
            return
