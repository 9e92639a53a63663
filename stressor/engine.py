"""The engine: walks the plan, starts batches when they are due, follows every run to its end.

Structure (every task has an owner): ``run`` owns one task group of batch tasks. The driver starts a batch
task at each due time of an open stage, or tops up runs in flight in a closed stage; a batch task submits
its batch and follows its runs through the target. After the last stage comes a grace period for the runs
still going; then the task group is cancelled and whatever is still open is recorded as open, not dropped.
``interrupt`` (Ctrl-C) skips the rest of the plan and the grace period; results gathered so far are kept.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import anyio
from anyio.abc import TaskGroup

from stressor.metrics import Metrics, Outcome, RunRecord
from stressor.plan import BatchStart, StageWindow, open_starts, stage_windows, target_in_flight
from stressor.profile import ClosedLoad, OpenLoad, Profile
from stressor.targets.base import BatchOrder, RunEnd, Submission, SubmitError, Target
from stressor.timestamps import NS_PER_S, ClockAnchor

MIN_SLEEP_S = 0.001  # shorter sleeps spin under uvloop (engineering notes)
CLOSED_TICK_S = 0.05  # how often a closed stage re-reads a ramping target when no run ends


@dataclass(frozen=True, slots=True)
class EngineResult:
    """What a run of the engine produced; ``records`` holds one record per run, open ones included."""

    metrics: Metrics
    records: tuple[RunRecord, ...]
    t0_ns: int
    ended_ns: int
    interrupted: bool
    stop_reason: str | None

    @property
    def elapsed_s(self) -> float:
        return (self.ended_ns - self.t0_ns) / NS_PER_S


@dataclass(slots=True)
class _OpenRun:
    """A run that exists on the server and has not been seen to end."""

    record: RunRecord  # outcome OPEN until the end is known


class Engine:
    """Drives one profile against one target."""

    def __init__(
        self,
        profile: Profile,
        target: Target,
        *,
        metrics: Metrics | None = None,
        enforce_budget: bool = False,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.profile = profile
        self.target = target
        self.enforce_budget = enforce_budget and profile.cost.budget_cents is not None
        self._clock = clock
        self.metrics = metrics if metrics is not None else Metrics(ClockAnchor.now())
        self._t0_ns = 0
        self._records: list[RunRecord] = []
        self._open: dict[str, _OpenRun] = {}
        self._dealt: Counter[int] = Counter()  # runs dealt a scenario, per variant
        self._seq = 0
        self._runs_in_flight = 0
        self._active_batches = 0
        self._idle = anyio.Event()
        self._capacity = anyio.Event()
        self._committed_cents = 0.0
        self._drive_scope = anyio.CancelScope()
        self._grace_scope = anyio.CancelScope()
        self._batches_scope = anyio.CancelScope()
        self.interrupted = False
        self.stop_reason: str | None = None

    # ------------------------------------------------------------------------------------------ control

    @property
    def runs_in_flight(self) -> int:
        """Runs submitted (or being submitted) and not yet seen to end."""
        return self._runs_in_flight

    def elapsed_s(self) -> float:
        """Seconds since the run began."""
        return (self._clock() - self._t0_ns) / NS_PER_S if self._t0_ns else 0.0

    def interrupt(self) -> None:
        """Stop now (Ctrl-C): no new batches, no grace period; what was gathered is kept."""
        self.interrupted = True
        self.stop("interrupted")
        self._grace_scope.cancel()
        self._batches_scope.cancel()

    def stop(self, reason: str) -> None:
        """Stop starting batches (the runs in flight are still followed through the grace period)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._drive_scope.cancel()

    async def run(self) -> EngineResult:
        """Run the whole profile and return its results; never raises for what the target answers."""
        self._t0_ns = self._clock()
        self.metrics.anchor = ClockAnchor.now()
        with self._batches_scope:
            async with anyio.create_task_group() as batches:
                with self._drive_scope:
                    await self._drive(batches)
                with self._grace_scope, anyio.move_on_after(self.profile.grace_s):
                    while self._active_batches:
                        await self._idle.wait()
                batches.cancel_scope.cancel()
        ended_ns = self._clock()
        for open_run in self._open.values():
            self._finish(open_run.record)
        self._open.clear()
        return EngineResult(
            metrics=self.metrics,
            records=tuple(self._records),
            t0_ns=self._t0_ns,
            ended_ns=ended_ns,
            interrupted=self.interrupted,
            stop_reason=self.stop_reason,
        )

    # ------------------------------------------------------------------------------------------ driving

    def _ns(self, offset_s: float) -> int:
        return self._t0_ns + round(offset_s * NS_PER_S)

    async def _sleep_until(self, when_ns: int) -> None:
        delay = (when_ns - self._clock()) / NS_PER_S
        if delay > 0:
            await anyio.sleep(max(delay, MIN_SLEEP_S))

    async def _drive(self, batches: TaskGroup) -> None:
        starts = open_starts(self.profile)
        upcoming = next(starts, None)
        for window in stage_windows(self.profile):
            load = window.stage.load
            if isinstance(load, OpenLoad):
                upcoming = await self._drive_open(batches, window, starts, upcoming)
            elif isinstance(load, ClosedLoad):
                await self._drive_closed(batches, window)
            else:
                await self._sleep_until(self._ns(window.end_s))

    async def _drive_open(
        self,
        batches: TaskGroup,
        window: StageWindow,
        starts: Iterator[BatchStart],
        upcoming: BatchStart | None,
    ) -> BatchStart | None:
        # Wake, start every batch that is due, sleep until the next: due times come from the plan alone.
        while upcoming is not None and upcoming.stage == window.index:
            due_ns = self._ns(upcoming.due_s)
            await self._sleep_until(due_ns)
            while (
                upcoming is not None and upcoming.stage == window.index and self._ns(upcoming.due_s) <= (self._clock())
            ):
                self._launch(batches, upcoming, self._ns(upcoming.due_s))
                upcoming = next(starts, None)
        await self._sleep_until(self._ns(window.end_s))
        return upcoming

    async def _drive_closed(self, batches: TaskGroup, window: StageWindow) -> None:
        end_ns = self._ns(window.end_s)
        variants = len(self.profile.variants)
        while (now := self._clock()) < end_ns:
            wanted = target_in_flight(window, (now - self._t0_ns) / NS_PER_S)
            while self._runs_in_flight < wanted:
                shape = window.stage.batch
                runs = min(shape.runs, wanted - self._runs_in_flight)
                start = BatchStart(self._seq, 0.0, window.index, self._seq % variants, replace(shape, runs=runs))
                self._launch(batches, start, now)
            self._capacity = anyio.Event()
            with anyio.move_on_after(min(CLOSED_TICK_S, (end_ns - now) / NS_PER_S)):
                await self._capacity.wait()

    def _launch(self, batches: TaskGroup, start: BatchStart, due_ns: int) -> None:
        """Start one batch task now; its runs count as in flight from this moment."""
        runs = start.shape.runs
        self.metrics.planned_runs += runs
        self._seq = max(self._seq, start.seq + 1)
        if self.enforce_budget:
            assert self.profile.cost.budget_cents is not None
            if self._committed_cents + runs * self.profile.cost.run_cost_cents > self.profile.cost.budget_cents:
                self.metrics.record_not_started("budget", runs)
                return
            self._committed_cents += runs * self.profile.cost.run_cost_cents
        self._runs_in_flight += runs
        self._active_batches += 1
        batches.start_soon(self._batch, start, due_ns, name=f"batch-{start.seq}")

    # ------------------------------------------------------------------------------------------ batches

    def _deal(self, variant: int, runs: int) -> list[int]:
        """Scenario indices for the next ``runs`` runs of a variant: the corpus in order, cycled."""
        first = self._dealt[variant]
        self._dealt[variant] += runs
        return [(first + i) % len(self.profile.scenarios) for i in range(runs)]

    async def _batch(self, start: BatchStart, due_ns: int) -> None:
        variant = self.profile.variants[start.variant]
        scenarios = [self.profile.scenarios[i] for i in self._deal(start.variant, start.shape.runs)]
        stagger_ns = round(start.shape.stagger_s * NS_PER_S)
        template = RunRecord(
            batch_seq=start.seq,
            index=0,
            stage=start.stage,
            variant=variant.name,
            scenario="",
            outcome=Outcome.OPEN,
            due_ns=due_ns,
            stagger_s=start.shape.stagger_s,
        )
        order = BatchOrder(
            seq=start.seq,
            name=f"stressor {self.profile.name} #{start.seq}",
            request=variant.request,
            prompts=tuple(s.prompt for s in scenarios),
            stagger_s=start.shape.stagger_s,
        )
        try:
            sent_ns = self._clock()
            self.metrics.record_batch_start(due_ns, sent_ns)
            try:
                submission = await self.target.submit(order)
            except SubmitError as error:
                for i, scenario in enumerate(scenarios):
                    self._finish(
                        replace(
                            template,
                            index=i,
                            scenario=scenario.name,
                            due_ns=due_ns + i * stagger_ns,
                            outcome=Outcome.ERRORED,
                            error=error.cause,
                        )
                    )
                if error.fatal:
                    self.stop(error.message)
                return
            self.metrics.record_submit(sent_ns, self._clock())
            self.metrics.submitted_runs += len(submission.runs)
            self._register(submission, template, scenarios, stagger_ns)
            await self.target.follow(submission, self._on_end)
        finally:
            self._active_batches -= 1
            if not self._active_batches:
                self._idle.set()
                self._idle = anyio.Event()

    def _register(self, submission: Submission, template: RunRecord, scenarios: list, stagger_ns: int) -> None:
        for run in submission.runs:
            cost = run.estimated_cost_cents
            self._open[run.run_id] = _OpenRun(
                replace(
                    template,
                    index=run.index,
                    scenario=scenarios[run.index].name,
                    due_ns=template.due_ns + run.index * stagger_ns,
                    run_id=run.run_id,
                    batch_id=submission.batch_id,
                    created_at=run.created_at,
                    cost_cents=cost,
                )
            )
            if cost is not None and math.isfinite(cost):
                self.metrics.cost_cents += cost
                if self.enforce_budget:  # the server's estimate replaces the plan's
                    self._committed_cents += cost - self.profile.cost.run_cost_cents

    def _on_end(self, end: RunEnd) -> None:
        open_run = self._open.pop(end.run_id, None)
        if open_run is None:
            return  # reported twice (a target may see a run in two answers): counted once
        self._finish(
            replace(
                open_run.record,
                outcome=Outcome.COMPLETED if end.status == "completed" else Outcome.FAILED,
                error=end.error_message or None,
                detected_ns=end.detected_ns,
                started_at=end.started_at,
                completed_at=end.completed_at,
            )
        )

    def _finish(self, record: RunRecord) -> None:
        self._records.append(record)
        self.metrics.record_run(record)
        self._runs_in_flight -= 1
        self._capacity.set()
