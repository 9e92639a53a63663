"""The coordinator's merge of its workers' snapshots into the figures of one run. Pure: no clock, no I/O.

Run records are folded into one ``Metrics`` as they arrive (exactly what one process would have recorded
for the same runs). Counters and the batch-level histograms come cumulative in every snapshot, so the merge
sums each worker's latest; HDR histograms add losslessly. A lost worker keeps what it streamed; the runs it
had in flight at its last snapshot are counted open, since nobody follows them any more.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from stressor.distributed.snapshot import Snapshot, WorkerLost, rebase
from stressor.engine import EngineResult
from stressor.governor import Governor
from stressor.intervals import Sample
from stressor.metrics import LatencyRecorder, Measure, Metrics, Outcome, RunRecord
from stressor.profile import Profile
from stressor.progress import Progress, progress_of
from stressor.timestamps import NS_PER_S, ClockAnchor

WORKER_LOST = "worker_lost"


def _merged(recorders: Iterable[LatencyRecorder]) -> LatencyRecorder:
    total = LatencyRecorder()
    for recorder in recorders:
        total.merge(recorder)
    return total


def _sum_samples(t_s: float, samples: Iterable[Sample]) -> Sample:
    samples = list(samples)
    return Sample(
        t_s=t_s,
        requests=sum(s.requests for s in samples),
        runs_in_flight=sum(s.runs_in_flight for s in samples),
        throttled_s=sum(s.throttled_s for s in samples),
    )


class Tally:
    """Snapshots of ``workers`` workers folded into one run. ``start_ns`` is the shared start on the
    coordinator's monotonic clock: records are rebased onto it."""

    def __init__(self, profile: Profile, workers: int, anchor: ClockAnchor, start_ns: int) -> None:
        self.profile = profile
        self.workers = workers
        self.anchor = anchor
        self.start_ns = start_ns
        self.records: list[RunRecord] = []
        self.lost: dict[int, WorkerLost] = {}
        self._runs = Metrics(anchor)  # everything that run records tell
        self._latest: dict[int, Snapshot] = {}
        self._grid: dict[int, list[Sample]] = {w: [] for w in range(workers)}  # interval samples, per worker
        self._ends: dict[int, Sample] = {}  # each finished worker's last sample
        self.own_requests: Counter[str] = Counter()  # the coordinator's own (the target's pre-flight check)

    # ------------------------------------------------------------------------------------------ feeding

    def add(self, snapshot: Snapshot) -> list[RunRecord]:
        """Fold one snapshot in; the records it brought, on the coordinator's clock (for the runs log)."""
        if snapshot.worker in self.lost:
            return []  # its runs in flight were counted open when it was lost
        records = [rebase(r, 0, self.start_ns) for r in snapshot.records]
        for record in records:
            self._runs.record_run(record)
        self.records.extend(records)
        if snapshot.worker in self._ends:
            return records  # late: its runs count, its counters are older than the final snapshot's
        grid = list(snapshot.samples)
        if snapshot.final and grid:
            self._ends[snapshot.worker] = grid.pop()  # a final snapshot ends with the sample at the worker's end
        self._grid[snapshot.worker].extend(grid)
        self._latest[snapshot.worker] = snapshot
        return records

    def lose(self, lost: WorkerLost) -> None:
        """A worker ended without its final snapshot."""
        if lost.worker not in self._ends:
            self.lost.setdefault(lost.worker, lost)

    @property
    def finished(self) -> bool:
        """Whether every worker has ended, one way or the other."""
        return len(self._ends) + len(self.lost) >= self.workers

    # ------------------------------------------------------------------------------------------ reading

    def in_flight(self) -> int:
        """Runs in flight across the workers still running, as of their latest snapshots."""
        return sum(s.runs_in_flight for w, s in self._latest.items() if w not in self.lost and w not in self._ends)

    def governor(self) -> Governor:
        """One governor holding the sum of the workers' (their limits, throttling, retries, breaker)."""
        total = Governor(self.profile.limits)
        for snapshot in self._latest.values():
            total.absorb(snapshot.governor, snapshot.server_rate)
        return total

    def _on_clock(self, pick: Callable[[Iterable[float]], float], seconds: Iterable[float | None]) -> int | None:
        """``pick`` of the workers' times (seconds from the shared start) on the coordinator's clock."""
        known = [t for t in seconds if t is not None]
        return self.start_ns + round(pick(known) * NS_PER_S) if known else None

    def metrics(self) -> Metrics:
        """The merged figures: run-level from the records, batch-level and counters from the latest
        snapshots. A new object each call; its run-level parts are shared with the tally (read, not fed)."""
        runs, latest = self._runs, list(self._latest.values())
        merged = Metrics(self.anchor)
        merged.recorders = dict(runs.recorders)
        merged.recorders[Measure.START_LATENESS] = _merged(s.start_lateness for s in latest)
        merged.recorders[Measure.SUBMIT_RTT] = _merged(s.submit_rtt for s in latest)
        merged.dispatch_lag = _merged(s.dispatch_lag for s in latest)
        merged.outcomes = Counter(runs.outcomes)
        merged.errors = runs.errors
        merged.by_variant, merged.by_scenario, merged.grades = runs.by_variant, runs.by_scenario, runs.grades
        # When batches were due and the last create was answered, across the workers: the spans of offered and
        # achieved load (the records may have gone to the runs log already).
        merged.first_due_ns = self._on_clock(min, (s.first_due_s for s in latest))
        merged.last_due_ns = self._on_clock(max, (s.last_due_s for s in latest))
        merged.last_submit_ns = self._on_clock(max, (s.last_submit_s for s in latest))
        merged.planned_runs = sum(s.planned_runs for s in latest)
        merged.never_due_runs = sum(s.never_due_runs for s in latest)
        # The plan ran until the first worker's next batch would have been due: the whole plan's next one.
        merged.plan_ran_s = min((s.plan_ran_s for s in latest if s.plan_ran_s is not None), default=None)
        merged.submitted_runs = sum(s.submitted_runs for s in latest)
        merged.cost_cents = sum(s.cost_cents for s in latest)
        merged.requests.update(self.own_requests)
        for snapshot in latest:
            merged.requests.update(snapshot.requests)
            merged.not_started.update(snapshot.not_started)
        for worker in self.lost:
            if (snapshot := self._latest.get(worker)) is not None:
                merged.outcomes[Outcome.OPEN] += snapshot.runs_in_flight
        return merged

    def samples(self) -> tuple[Sample, ...]:
        """The workers' interval samples summed per interval (a worker past its end, or lost, counts with
        its last figures), then one sample at the end of the run."""
        grids = self._grid
        rows = max((len(g) for g in grids.values()), default=0)
        zero = Sample(0.0, 0, 0, 0.0)

        def at(worker: int, row: int) -> Sample:
            grid = grids[worker]
            if row < len(grid):
                return grid[row]
            return self._ends.get(worker) or (grid[-1] if grid else zero)

        merged = []
        for row in range(rows):
            t_s = max(grids[w][row].t_s for w in grids if row < len(grids[w]))
            merged.append(_sum_samples(t_s, (at(w, row) for w in grids)))
        ends = [self._ends.get(w) or (grids[w][-1] if grids[w] else zero) for w in grids]
        merged.append(_sum_samples(max((e.t_s for e in ends), default=0.0), ends))
        return tuple(merged)

    def elapsed_s(self) -> float:
        """Seconds from the shared start to the last worker's end (or last snapshot)."""
        ends = [s.t_s for s in self._ends.values()] + [g[-1].t_s for g in self._grid.values() if g]
        return max(ends, default=0.0)

    def progress(self, elapsed_s: float) -> Progress:
        """A live snapshot for the progress display."""
        throttled = sum(s.governor.throttle_wait_s + s.governor.server_pause_s for s in self._latest.values())
        return progress_of(self.profile, self.metrics(), elapsed_s, self.in_flight(), throttled)

    def stop(self) -> tuple[bool, str | None, str | None]:
        """Whether the run was interrupted, and why it stopped early (the first reason given), with its cause."""
        finals = [s for s in self._latest.values() if s.final]
        interrupted = any(s.interrupted for s in finals)
        for snapshot in sorted(finals, key=lambda s: s.worker):
            if snapshot.stop_reason is not None and snapshot.stop_cause != "interrupted":
                return interrupted, f"worker {snapshot.worker}: {snapshot.stop_reason}", snapshot.stop_cause
        if self.lost:
            losses = "; ".join(f"worker {w}: {self.lost[w].reason}" for w in sorted(self.lost))
            in_flight = sum(self._latest[w].runs_in_flight for w in self.lost if w in self._latest)
            return (
                interrupted,
                (
                    f"{len(self.lost)} of {self.workers} workers lost ({losses}); what they streamed is kept, their "
                    f"{in_flight} runs in flight are counted open and the rest of their share never started"
                ),
                WORKER_LOST,
            )
        if interrupted:
            return True, "interrupted", "interrupted"
        return False, None, None

    def result(self) -> EngineResult:
        """The run's result, as one engine would have returned it."""
        interrupted, reason, cause = self.stop()
        return EngineResult(
            metrics=self.metrics(),
            records=tuple(self.records),
            t0_ns=self.start_ns,
            ended_ns=self.start_ns + round(self.elapsed_s() * NS_PER_S),
            interrupted=interrupted,
            stop_reason=reason,
            stop_cause=cause,
            governor=self.governor(),
            samples=self.samples(),
        )
