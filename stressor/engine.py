"""The engine: walks the plan, starts batches when they are due, follows every run to its end.

``Engine.run`` owns one task group of batch tasks: each submits its batch and follows its runs through the
target; after the last stage a grace period, then whatever is still open is recorded as ``open``, never
dropped. The ``Governor`` says how many runs may be in flight; a stop (breaker, fatal answer, budget, abort
threshold, Ctrl-C) counts the rest of the plan as not started, by cause. See docs/internals.md#engine.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from stressor.clock import SYSTEM, Clock, anchor_of, is_system
from stressor.governor import Governor
from stressor.intervals import Sample
from stressor.metrics import Metrics, Outcome, RunRecord
from stressor.plan import BatchStart, StageWindow, open_starts, stage_at, stage_windows, target_in_flight
from stressor.profile import ClosedLoad, OpenLoad, Profile, Scenario
from stressor.progress import Progress, progress_of
from stressor.shares import WHOLE, Share
from stressor.targets.base import BatchOrder, RunEnd, SubmitError, Target
from stressor.timestamps import NS_PER_S
from stressor.wake import PreciseTimer

MIN_SLEEP_S = 0.001  # shorter sleeps spin under uvloop (engineering notes)
WAKE_EARLY_NS = 500_000  # the pacer sets its timer this early, then yields to the loop until the due time
SPIN_LIMIT_NS = 1_000_000  # and yields at most this much longer than that (a timer fires up to 1 ms off)
SPIN_SHARE = 0.05  # of the time between two wakes of the pacer, the most it spends yielding for punctuality
CLOSED_TICK_S = 0.05  # how often a closed stage re-reads a ramping target when no run ends
HELD_BACK_BY = ("fatal", "breaker", "threshold")  # stops after which no batch that waited for room is sent
# A create refused with 429/503 made nothing: its runs are "rejected". One whose answer was lost and that no
# listing settled may have made them: "unknown".
_SUBMIT_OUTCOMES = {"http_429": Outcome.REJECTED, "http_503": Outcome.REJECTED, "unknown": Outcome.UNKNOWN}


def _perf_counter_is_monotonic() -> bool:
    return time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"


def spin_window_ns(most_ns: int, since_last_wake_ns: int) -> int:
    """Without the kernel's timer, how early the pacer sets its timer before a due time, then yields until it:
    ``most_ns``, but at most ``SPIN_SHARE`` of the time since its last wake: at high start rates, yielding the
    whole ``most_ns`` before every start would spend a large share of a core waiting on time."""
    return max(0, min(most_ns, int(SPIN_SHARE * since_last_wake_ns)))


_END_OUTCOMES = {"completed": Outcome.COMPLETED, "failed": Outcome.FAILED, "unknown": Outcome.UNKNOWN}


class OpenRun(NamedTuple):
    """A run the server created and the client has not seen end: what its record will say. The record itself
    is made once, at the end (a frozen record built, then replaced twice, cost CPU on every run)."""

    batch_seq: int
    index: int
    stage: int
    variant: str
    scenario: str
    due_ns: int
    stagger_s: float
    run_id: str
    batch_id: str | None
    created_at: float | None
    cost_cents: float | None

    def record(self, outcome: Outcome, **seen: Any) -> RunRecord:
        """The run's record, with how it ended and what was learned of it then."""
        return RunRecord(
            batch_seq=self.batch_seq,
            index=self.index,
            stage=self.stage,
            variant=self.variant,
            scenario=self.scenario,
            outcome=outcome,
            due_ns=self.due_ns,
            run_id=self.run_id,
            batch_id=self.batch_id,
            created_at=self.created_at,
            stagger_s=self.stagger_s,
            cost_cents=self.cost_cents,
            **seen,
        )


@dataclass(frozen=True, slots=True)
class EngineResult:
    """What a run of the engine produced; ``records`` holds one record per run, open ones included (read back
    from the runs log when the engine streamed them there instead of keeping them)."""

    metrics: Metrics
    records: Sequence[RunRecord]
    t0_ns: int
    ended_ns: int
    interrupted: bool
    stop_reason: str | None
    stop_cause: str | None
    governor: Governor
    samples: tuple[Sample, ...]

    @property
    def elapsed_s(self) -> float:
        return (self.ended_ns - self.t0_ns) / NS_PER_S


class Engine:
    """Drives one profile against one target. Each run's record goes to ``on_record`` as the run ends; with
    ``keep_records=False`` (when that sink keeps them, as the runs log does) the engine holds none itself."""

    def __init__(
        self,
        profile: Profile,
        target: Target,
        *,
        metrics: Metrics | None = None,
        governor: Governor | None = None,
        enforce_budget: bool = False,
        on_record: Callable[[RunRecord], None] | None = None,
        keep_records: bool = True,
        clock: Clock = SYSTEM,
        share: Share = WHOLE,
        wake_early_ns: int = WAKE_EARLY_NS,
        precise_wake: bool = True,
    ) -> None:
        self.profile = profile
        # Waking early and the kernel's timer (stressor.wake, on CLOCK_MONOTONIC) are for the machine's clock:
        # another clock's timers fire on its own instants.
        system = is_system(clock)
        self._wake_early_ns = max(0, wake_early_ns) if system else 0  # 0: the pacer only sleeps
        self._woke_ns = 0  # the instant the pacer last woke for
        self._precise_wake = precise_wake and system and _perf_counter_is_monotonic()
        self._timer: PreciseTimer | None = None
        self.share = share  # this engine's part of the plan, when several workers run it
        self.target = target
        self.enforce_budget = enforce_budget and profile.cost.budget_cents is not None
        self.clock = clock
        self._clock = clock.now_ns  # for SYSTEM, time.perf_counter_ns itself
        self._on_record = on_record  # told of every run as it ends (the runs log)
        # False when ``on_record`` keeps them (the runs log): memory then stays flat however long the run.
        self._keep_records = keep_records
        self.metrics = metrics if metrics is not None else Metrics(anchor_of(clock))
        self.governor = governor if governor is not None else Governor(profile.limits)
        self._t0_ns = 0
        self._records: list[RunRecord] = []
        self._open: dict[str, OpenRun] = {}  # runs that exist and have not been seen to end
        self._dealt: Counter[int] = Counter()  # runs dealt a scenario, per variant
        self._seq = 0
        self._starts: Iterator[BatchStart] = iter(())
        self._upcoming: BatchStart | None = None
        self._runs_waiting = 0  # in batch tasks that wait for room to start
        self._batches_in_flight = 0  # submitted (or being submitted) with runs not all ended
        self._active_batches = 0  # batch tasks alive
        self._idle = anyio.Event()
        self._room: anyio.Event | None = None  # set when a run ends, if anyone waits for it (see _room_event)
        self._committed_cents = 0.0
        self._samples: list[Sample] = []
        self._requests_before = 0  # counted before the run began (the target's pre-flight check)
        self._drive_scope = anyio.CancelScope()
        self._grace_scope = anyio.CancelScope()
        self._batches_scope = anyio.CancelScope()
        self.interrupted = False
        self.stop_reason: str | None = None
        self.stop_cause: str | None = None

    # ------------------------------------------------------------------------------------------ control

    @property
    def runs_in_flight(self) -> int:
        """Runs submitted (or being submitted) and not yet seen to end."""
        return self.governor.runs_in_flight

    def elapsed_s(self) -> float:
        """Seconds since the run began."""
        return (self._clock() - self._t0_ns) / NS_PER_S if self._t0_ns else 0.0

    def interrupt(self) -> None:
        """Stop now (Ctrl-C): no new batches, no grace period; what was gathered is kept."""
        self.interrupted = True
        self.stop("interrupted", cause="interrupted")
        self._grace_scope.cancel()
        self._batches_scope.cancel()

    def stop(self, reason: str, *, cause: str = "fatal") -> None:
        """Stop starting batches; runs in flight are still followed through the grace period. ``cause``
        (``fatal``, ``breaker``, ``budget``, ``interrupted``, ``threshold``) labels the runs of the plan that were
        not started."""
        if self.stop_reason is None:
            self.stop_reason, self.stop_cause = reason, cause
            self.metrics.plan_ran_s = self._plan_ran_s(self._clock()) if self._t0_ns else 0.0
        self._drive_scope.cancel()

    def _plan_ran_s(self, stop_ns: int) -> float:
        """Seconds of the plan that ran before a stop at ``stop_ns``: to the stop, or in an open stage to the
        next batch it would have made due (a batch stands for the gap to the next; a stop just after a batch
        must not read as that batch's runs offered in an instant)."""
        stop_s = max(0.0, (stop_ns - self._t0_ns) / NS_PER_S)
        window = stage_at(self.profile, stop_s)
        if window is None:
            return self.profile.duration_s
        if not isinstance(window.stage.load, OpenLoad):
            return stop_s
        next_due_s = self._upcoming.due_s if self._upcoming is not None else math.inf
        return max(stop_s, min(next_due_s, window.end_s))

    async def run(self, t0_ns: int | None = None) -> EngineResult:
        """Run the whole profile and return its results; never raises for what the target answers. ``t0_ns``
        (default: now) is the instant the plan counts from: a worker passes the start it shares with others."""
        self._t0_ns = self._clock() if t0_ns is None else t0_ns
        self.metrics.anchor = anchor_of(self.clock)
        self._requests_before = sum(self.metrics.requests.values())
        self._timer = PreciseTimer.open() if self._precise_wake else None
        try:
            with self._batches_scope:
                async with anyio.create_task_group() as batches:
                    batches.start_soon(self._sample_intervals)
                    with self._drive_scope:
                        await self._drive(batches)
                    self._count_rest_of_plan()
                    with self._grace_scope, anyio.move_on_after(self.profile.grace_s):
                        while self._active_batches:
                            await self._idle.wait()
                    batches.cancel_scope.cancel()
        finally:
            if self._timer is not None:
                self._timer.close()
                self._timer = None
        ended_ns = self._clock()
        for run in list(self._open.values()):
            self._finish(run.record(Outcome.OPEN))
        self._open.clear()
        self._samples.append(self._sample(ended_ns))
        return EngineResult(
            metrics=self.metrics,
            records=tuple(self._records),
            t0_ns=self._t0_ns,
            ended_ns=ended_ns,
            interrupted=self.interrupted,
            stop_reason=self.stop_reason,
            stop_cause=self.stop_cause,
            governor=self.governor,
            samples=tuple(self._samples),
        )

    def _sample(self, now_ns: int) -> Sample:
        governor = self.governor
        return Sample(
            t_s=(now_ns - self._t0_ns) / NS_PER_S,
            requests=sum(self.metrics.requests.values()) - self._requests_before,  # the intervals': since t0
            runs_in_flight=governor.runs_in_flight,
            throttled_s=governor.throttle_wait_s + governor.server_pause_s,
        )

    async def _sample_intervals(self) -> None:
        """Take a sample at the end of every interval, on a fixed grid from the start (never drifting)."""
        interval_ns = round(self.profile.interval_s * NS_PER_S)
        for boundary in itertools.count(1):
            boundary_ns = self._t0_ns + boundary * interval_ns
            await self._sleep_until(boundary_ns)
            self._samples.append(self._sample(boundary_ns))

    def _count_rest_of_plan(self) -> None:
        """After an early stop, the batches of open stages that never became due still count: not started."""
        if self.stop_cause is None:
            return
        rest = self._starts if self._upcoming is None else [self._upcoming, *self._starts]
        for start in rest:
            self.metrics.planned_runs += start.shape.runs
            self.metrics.never_due_runs += start.shape.runs
            self.metrics.record_not_started(self.stop_cause, start.shape.runs, variant=self._variant_of(start))

    # ------------------------------------------------------------------------------------------ driving

    def _ns(self, offset_s: float) -> int:
        return self._t0_ns + round(offset_s * NS_PER_S)

    async def _sleep_until(self, when_ns: int) -> None:
        delay = (when_ns - self._clock()) / NS_PER_S
        if delay > 0:
            await anyio.sleep(max(delay, MIN_SLEEP_S))

    async def _wake_at(self, when_ns: int) -> None:
        """Return at ``when_ns``, never before it, and as soon after it as the loop allows: on the kernel's
        timer where there is one (``stressor.wake``). Elsewhere the loop's timers keep whole milliseconds
        (asyncio rounds a sleep up, so a batch started 0-1 ms late on an idle loop; uvloop rounds to the
        nearest, so a timer may fire early): the timer is set a little early (see ``spin_window_ns``), then the
        pacer yields to the loop, which goes on serving everything else, until the instant comes. Those yields
        cost the CPU they span, for a lower p99 (benchmarks/README.md, start_lateness.py)."""
        if self._timer is not None:
            await self._timer.sleep_until(when_ns)
            return
        early_ns = spin_window_ns(self._wake_early_ns, when_ns - self._woke_ns)
        await self._sleep_until(when_ns - early_ns)
        give_up_ns = time.perf_counter_ns() + early_ns + SPIN_LIMIT_NS  # an injected clock may stand still
        while self._clock() < when_ns and time.perf_counter_ns() < give_up_ns:
            await anyio.lowlevel.checkpoint()
        await self._sleep_until(when_ns)
        self._woke_ns = when_ns

    async def _drive(self, batches: TaskGroup) -> None:
        share = self.share
        self._starts = (start for start in open_starts(self.profile) if share.owns(start.seq))
        self._upcoming = next(self._starts, None)
        for window in stage_windows(self.profile):
            load = window.stage.load
            if isinstance(load, OpenLoad):
                await self._drive_open(batches, window)
            elif isinstance(load, ClosedLoad):
                await self._drive_closed(batches, window)
            else:
                await self._sleep_until(self._ns(window.end_s))

    def _next_in(self, window: StageWindow) -> BatchStart | None:
        upcoming = self._upcoming
        return upcoming if upcoming is not None and upcoming.stage == window.index else None

    async def _drive_open(self, batches: TaskGroup, window: StageWindow) -> None:
        # Wake, start every batch that is due, sleep until the next: due times come from the plan alone.
        while (upcoming := self._next_in(window)) is not None:
            await self._wake_at(self._ns(upcoming.due_s))
            now = self._clock()
            while (upcoming := self._next_in(window)) is not None and self._ns(upcoming.due_s) <= now:
                self._upcoming = next(self._starts, None)
                if not self._launch(batches, upcoming, self._ns(upcoming.due_s)):
                    return
        await self._sleep_until(self._ns(window.end_s))

    async def _drive_closed(self, batches: TaskGroup, window: StageWindow) -> None:
        end_ns = self._ns(window.end_s)
        variants = len(self.profile.variants)
        while (now := self._clock()) < end_ns:
            wanted = self.share.part(target_in_flight(window, (now - self._t0_ns) / NS_PER_S))
            capacity = self.governor.run_capacity()
            if capacity is not None:
                wanted = min(wanted, capacity)
            while (busy := self.runs_in_flight + self._runs_waiting) < wanted:
                shape = replace(window.stage.batch, runs=min(window.stage.batch.runs, wanted - busy))
                seq = self.share.next_seq(self._seq)
                start = BatchStart(seq, 0.0, window.index, seq % variants, shape)
                if not self._launch(batches, start, now):
                    return
            room = self._room_event()
            with anyio.move_on_after(min(CLOSED_TICK_S, (end_ns - now) / NS_PER_S)):
                await room.wait()

    def _launch(self, batches: TaskGroup, start: BatchStart, due_ns: int) -> bool:
        """Start one batch task now; False when the run must stop starting batches."""
        runs = start.shape.runs
        self.metrics.planned_runs += runs
        self._seq = max(self._seq, start.seq + 1)
        trip = self.governor.trip(self._clock() / NS_PER_S)
        if trip is not None:
            self.metrics.record_not_started("breaker", runs, variant=self._variant_of(start))
            self.stop(trip.describe(), cause="breaker")
            return False
        if self.enforce_budget:
            budget = self.profile.cost.budget_cents
            assert budget is not None
            if self._committed_cents + runs * self.profile.cost.run_cost_cents > budget:
                # No batch starts after this one: a later, smaller one could still fit, but walking on would
                # keep a closed stage topping up forever and an open one idling through its whole schedule.
                self.metrics.record_not_started("budget", runs, variant=self._variant_of(start))
                self.stop(
                    f"budget reached: {self._committed_cents:.0f} of {budget:g} cents committed, "
                    f"the next batch would cost {runs * self.profile.cost.run_cost_cents:g} more",
                    cause="budget",
                )
                return False
            self._committed_cents += runs * self.profile.cost.run_cost_cents
        self._runs_waiting += runs
        self._active_batches += 1
        batches.start_soon(self._batch, start, due_ns, name=f"batch-{start.seq}")
        return True

    def _room_event(self) -> anyio.Event:
        """The event set when the next run ends. Made for those who wait on it: an event made at every end
        of a run for no one would cost CPU on every run."""
        if self._room is None:
            self._room = anyio.Event()
        return self._room

    def _blocked_by(self, runs: int) -> str | None:
        """Why a batch of ``runs`` may not start now, or None. A batch larger than the limit may start when
        nothing is in flight, or it would wait forever."""
        in_flight = self.governor.runs_in_flight
        capacity = self.governor.run_capacity()
        if capacity is not None and in_flight and in_flight + runs > capacity:
            return "runs_in_flight"
        most = self.profile.limits.max_batches_in_flight
        if most is not None and self._batches_in_flight >= most:
            return "batches_in_flight"
        return None

    async def _wait_for_room(self, runs: int, due_ns: int) -> str | None:
        """Wait, at most ``max_start_delay`` past the due time, until the limits let a batch start; the cause
        that kept it out when they never did."""
        if (blocked := self._blocked_by(runs)) is None:
            return None
        deadline_ns = due_ns + round(self.profile.limits.max_start_delay_s * NS_PER_S)
        began_ns = self._clock()
        try:
            while blocked is not None:
                remaining_s = (deadline_ns - self._clock()) / NS_PER_S
                if remaining_s <= 0:
                    return blocked
                room = self._room_event()
                with anyio.move_on_after(remaining_s):
                    await room.wait()
                blocked = self._blocked_by(runs)
            return None
        finally:
            self.governor.capacity_wait_s += (self._clock() - began_ns) / NS_PER_S

    # ------------------------------------------------------------------------------------------ batches

    def _variant_of(self, start: BatchStart) -> str:
        return self.profile.variants[start.variant].name

    def _deal(self, variant: int, runs: int) -> list[Scenario]:
        """Scenarios for the next ``runs`` runs of a variant: the corpus in order, cycled."""
        first = self._dealt[variant]
        self._dealt[variant] += runs
        scenarios = self.profile.scenarios
        return [scenarios[(first + i) % len(scenarios)] for i in range(runs)]

    async def _batch(self, start: BatchStart, due_ns: int) -> None:
        runs = start.shape.runs
        admitted = False
        try:
            self.metrics.dispatch_lag.record_ns(self._clock() - due_ns)
            try:
                blocked = await self._wait_for_room(runs, due_ns)
            except anyio.get_cancelled_exc_class():
                # The run ended while it waited for room: interrupted, or its grace period over. Counted under the
                # stop's cause (``interrupted``, ``fatal``...), or when the plan ran its course, the limit it met.
                cause = self.stop_cause or self._blocked_by(runs) or "runs_in_flight"
                self.metrics.record_not_started(cause, runs, variant=self._variant_of(start))
                raise
            finally:
                self._runs_waiting -= runs
            # A stop that came while it waited holds it back, but for the budget's: this batch was within it.
            if blocked is None and self.stop_cause in HELD_BACK_BY:
                blocked = self.stop_cause
            if blocked is not None:
                self.metrics.record_not_started(blocked, runs, variant=self._variant_of(start))
                return
            admitted = True
            self.governor.admit(runs)
            self._batches_in_flight += 1
            await self._submit_and_follow(start, due_ns)
        finally:
            self._batches_in_flight -= admitted
            self._active_batches -= 1
            if not self._active_batches:
                self._idle.set()
                self._idle = anyio.Event()

    async def _submit_and_follow(self, start: BatchStart, due_ns: int) -> None:
        variant = self.profile.variants[start.variant]
        scenarios = self._deal(start.variant, start.shape.runs)
        stagger_s = start.shape.stagger_s
        stagger_ns = round(stagger_s * NS_PER_S)
        names = [s.name for s in scenarios]

        def unsubmitted(outcome: Outcome, **seen: Any) -> None:
            for i, name in enumerate(names):
                self._finish(
                    RunRecord(
                        batch_seq=start.seq,
                        index=i,
                        stage=start.stage,
                        variant=variant.name,
                        scenario=name,
                        outcome=outcome,
                        due_ns=due_ns + i * stagger_ns,
                        stagger_s=stagger_s,
                        **seen,
                    )
                )

        order = BatchOrder(
            seq=start.seq,
            name=f"stressor {self.profile.name}",
            request=variant.request,
            prompts=tuple(s.prompt for s in scenarios),
            stagger_s=stagger_s,
        )
        sent_ns = self._clock()
        self.metrics.record_batch_start(due_ns, sent_ns, variant=variant.name, scenarios=names)
        try:
            submission = await self.target.submit(order)
        except anyio.get_cancelled_exc_class():
            # The run ended with the create still unanswered: its runs may exist. Open, never dropped.
            unsubmitted(Outcome.OPEN, error="create_in_flight")
            raise
        except SubmitError as error:
            outcome = _SUBMIT_OUTCOMES.get(error.cause, Outcome.ERRORED)
            learned_ns = self._clock()  # when the client learned the create failed: the interval it counts in
            unsubmitted(outcome, error=error.cause, detected_ns=learned_ns)
            if error.fatal:
                self.stop(error.message)
            elif (trip := self.governor.trip(self._clock() / NS_PER_S)) is not None:
                self.stop(trip.describe(), cause="breaker")
            return
        self.metrics.record_submit(sent_ns, self._clock(), variant=variant.name, scenarios=names)
        self.metrics.submitted_runs += len(submission.runs)
        for run in submission.runs:
            cost = run.estimated_cost_cents
            self._open[run.run_id] = OpenRun(
                batch_seq=start.seq,
                index=run.index,
                stage=start.stage,
                variant=variant.name,
                scenario=names[run.index],
                due_ns=due_ns + run.index * stagger_ns,
                stagger_s=stagger_s,
                run_id=run.run_id,
                batch_id=submission.batch_id,
                created_at=run.created_at,
                cost_cents=cost,
            )
            if cost is not None and math.isfinite(cost):
                self.metrics.cost_cents += cost
                if self.enforce_budget:  # the server's estimate replaces the plan's
                    self._committed_cents += cost - self.profile.cost.run_cost_cents
        # This frame lives as long as the batch is followed: what it no longer needs goes (benchmarks/in_flight.py)
        del order, scenarios, unsubmitted
        await self.target.follow(submission, self._on_end)

    def _on_end(self, end: RunEnd) -> None:
        run = self._open.pop(end.run_id, None)
        if run is None:
            return  # reported twice (a target may see a run in two answers): counted once
        offset = self.target.clock_offset()
        self._finish(
            run.record(
                _END_OUTCOMES[end.status],
                error=end.error_message or None,
                detected_ns=end.detected_ns,
                started_at=end.started_at,
                completed_at=end.completed_at,
                call_id=end.call_id,
                clock_offset_s=offset.offset_s if offset is not None else 0.0,
            )
        )

    def progress(self) -> Progress:
        """A snapshot for live display (percentiles are read from the histogram: call it about once a second)."""
        governor = self.governor
        throttled = governor.throttle_wait_s + governor.server_pause_s
        return progress_of(self.profile, self.metrics, self.elapsed_s(), self.runs_in_flight, throttled)

    @property
    def t0_ns(self) -> int:
        """The monotonic instant the run began (0 before it did)."""
        return self._t0_ns

    def _finish(self, record: RunRecord) -> None:
        if self._keep_records:
            self._records.append(record)
        if self._on_record is not None:
            self._on_record(record)
        self.metrics.record_run(record)
        self.governor.release(1)
        if self._room is not None:
            self._room.set()
            self._room = None
