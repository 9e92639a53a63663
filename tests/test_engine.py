"""The engine against an in-memory target: schedule, outcomes, grace, stops, closed model, budget. On virtual
time, but for the pacer's punctuality, measured on the machine's clock."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.virtual import run as run_virtual
from support.virtual import running_clock

from stressor.engine import SPIN_SHARE, WAKE_EARLY_NS, Engine, EngineResult, spin_window_ns
from stressor.limits import HttpOutcome
from stressor.metrics import Measure, Metrics, Outcome
from stressor.profile import Profile, parse_profile
from stressor.report.results import offered_load
from stressor.targets.base import BatchOrder, RunEnd, Submission, SubmitError, SubmittedRun
from stressor.timestamps import ClockAnchor


class FakeTarget:
    """Runs last ``duration_s`` from submission; batches ``fail`` refuses are refused. Reads the running loop's
    clock (virtual on a virtual loop), as the engine does."""

    def __init__(self, duration_s: float = 0.01, fail: Callable[[BatchOrder], SubmitError | None] | None = None):
        self.duration_s = duration_s
        self.fail = fail
        self.orders: list[BatchOrder] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._ids = itertools.count()

    async def check(self) -> None:
        pass

    async def submit(self, order: BatchOrder) -> Submission:
        self.orders.append(order)
        if self.fail and (error := self.fail(order)):
            raise error
        now = running_clock().wall()
        runs = tuple(SubmittedRun(f"r{next(self._ids)}", i, now, 16.0) for i in range(len(order.prompts)))
        self.in_flight += len(runs)
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        return Submission(batch_id=f"b{order.seq}", runs=runs)

    async def follow(self, submission: Submission, on_end: Callable[[RunEnd], None]) -> None:
        for run in submission.runs:
            await anyio.sleep(self.duration_s)
            self.in_flight -= 1
            clock = running_clock()
            now = clock.wall()
            on_end(RunEnd(run.run_id, "completed", clock.now_ns(), now - self.duration_s, now))

    def clock_offset(self) -> None:
        return None

    async def aclose(self) -> None:
        pass


def profile_of(stages: list[dict], **extra: object) -> Profile:
    return parse_profile({"stages": stages, "grace": "2s", **extra}, "p.toml", Path())


def run(profile: Profile, target: FakeTarget, *, real_time: bool = False, **options: object) -> EngineResult:
    """The engine over ``target``, on virtual time (``real_time``: on the machine's clock)."""

    async def main() -> EngineResult:
        return await Engine(profile, target, clock=running_clock(), **options).run()  # type: ignore[arg-type]

    return anyio.run(main) if real_time else run_virtual(main)


def test_open_stage_starts_every_batch_and_follows_every_run() -> None:
    profile = profile_of(
        [{"duration": "0.5s", "rate": "20/s"}],
        batch={"runs": 3},
        scenarios={"prompts": ["a", "b"]},
        variants=[{"name": "x", "target_id": 1}, {"name": "y", "target_id": 2}],
    )
    target = FakeTarget()
    result = run(profile, target)
    assert len(target.orders) == 10
    assert result.metrics.outcomes == {Outcome.COMPLETED: 30}
    assert len(result.records) == 30
    assert len({r.run_id for r in result.records}) == 30  # none lost, none twice
    # Variants alternate; each variant is dealt the corpus in order, cycled.
    assert [o.request.target_id for o in target.orders[:4]] == [1, 2, 1, 2]
    assert target.orders[0].prompts == ("a", "b", "a")
    assert target.orders[2].prompts == ("b", "a", "b")
    lateness = result.metrics.recorders[Measure.START_LATENESS].summary()
    assert lateness.count == 10
    assert result.metrics.recorders[Measure.QUEUE_TO_COMPLETION].count == 30
    # Batch-level figures land in the slice of the batch's variant and of each scenario it carries.
    by_variant = result.metrics.by_variant
    for measure in (Measure.START_LATENESS, Measure.SUBMIT_RTT):
        assert [by_variant[v].recorder(measure).count for v in ("x", "y")] == [5, 5]
        assert sorted(piece.recorder(measure).count for piece in result.metrics.by_scenario.values()) == [10, 10]


class SendTimes(Metrics):
    """Metrics that keep every batch's due and send instants."""

    def __init__(self) -> None:
        super().__init__(ClockAnchor.now())
        self.starts: list[tuple[int, int]] = []

    def record_batch_start(self, due_ns: int, sent_ns: int, **slices: Any) -> None:
        super().record_batch_start(due_ns, sent_ns, **slices)
        self.starts.append((due_ns, sent_ns))


def test_no_batch_starts_before_its_due_time_and_starts_come_soon_after() -> None:
    profile = profile_of([{"duration": "0.5s", "rate": "200/s"}])
    metrics = SendTimes()
    run(profile, FakeTarget(duration_s=0.001), metrics=metrics, real_time=True)
    assert len(metrics.starts) == 100
    lateness_ms = sorted((sent - due) / 1e6 for due, sent in metrics.starts)
    assert lateness_ms[0] >= 0  # the pacer wakes early but never sends early
    assert lateness_ms[len(lateness_ms) // 2] < 50  # loose: a shared CI machine, not a benchmark


def test_the_pacer_spends_at_most_a_share_of_its_time_yielding_for_punctuality() -> None:
    ms = 1_000_000
    assert SPIN_SHARE * 10 * ms == WAKE_EARLY_NS  # 100 starts/s: the whole window
    assert spin_window_ns(WAKE_EARLY_NS, 10 * ms) == WAKE_EARLY_NS
    assert spin_window_ns(WAKE_EARLY_NS, 1000 * ms) == WAKE_EARLY_NS
    assert spin_window_ns(WAKE_EARLY_NS, 3 * ms) == 150_000  # ~333/s: 5 % of the gap
    assert spin_window_ns(WAKE_EARLY_NS, 0) == 0  # due at the instant it last woke for
    assert spin_window_ns(0, 1000 * ms) == 0  # wake_early_ns=0: it only sleeps


@pytest.mark.parametrize("precise_wake", [True, False], ids=["kernel-timer", "loop-timers-and-yields"])
def test_a_fast_pacer_still_never_sends_early(precise_wake: bool) -> None:
    profile = profile_of([{"duration": "0.3s", "rate": "1000/s"}])  # 1 ms apart (yields: a 50 µs window)
    metrics = SendTimes()
    run(profile, FakeTarget(duration_s=0.001), metrics=metrics, precise_wake=precise_wake, real_time=True)
    assert len(metrics.starts) == 300
    assert min(sent - due for due, sent in metrics.starts) >= 0


def test_runs_still_going_after_grace_are_reported_open() -> None:
    profile = profile_of([{"duration": "0.1s", "rate": "10/s"}], grace="0.1s")
    result = run(profile, FakeTarget(duration_s=5))
    assert result.metrics.outcomes == {Outcome.OPEN: 1}
    assert result.records[0].outcome is Outcome.OPEN
    assert result.elapsed_s < 2


def test_refused_batches_count_as_errored_and_a_fatal_answer_stops_the_run() -> None:
    profile = profile_of([{"duration": "1s", "rate": "20/s"}], batch={"runs": 2})

    def fail(order: BatchOrder) -> SubmitError | None:
        if order.seq == 1:
            return SubmitError("http_503", "busy")
        if order.seq == 3:
            return SubmitError("http_401", "the API key was refused", fatal=True)
        return None

    target = FakeTarget(fail=fail)
    result = run(profile, target)
    assert result.stop_reason == "the API key was refused"
    assert result.metrics.errors == {"http_503": 2, "http_401": 2}
    # Batches 0 and 2 completed; on a busy machine batch 4 may have become due (50 ms later) before batch 3's
    # answer came, never more than that.
    sent = sorted(order.seq for order in target.orders)
    assert sent[:4] == [0, 1, 2, 3] and len(sent) <= 6
    assert result.metrics.outcomes[Outcome.COMPLETED] == 2 * (len(sent) - 2)
    assert result.elapsed_s < 1.0  # the rest of the plan was not walked


def test_a_batch_waiting_for_room_when_a_fatal_answer_comes_is_never_sent() -> None:
    # Batch 0 takes all the room; the batches due after it wait for room. A fatal answer (another worker's, or
    # the user's stop) comes while they wait: when room frees up, none of them may be sent.
    profile = profile_of(
        [{"duration": "0.2s", "rate": "20/s"}],
        batch={"runs": 2},
        limits={"max_runs_in_flight": 2, "max_start_delay": "60s", "adaptive": False},
    )

    class Followed(FakeTarget):
        async def follow(self, submission: Submission, on_end: Callable[[RunEnd], None]) -> None:
            following.set()  # the first batch is in flight: the others wait for room
            await super().follow(submission, on_end)

    target = Followed(duration_s=0.15)
    following: anyio.Event  # made inside the event loop

    async def main() -> EngineResult:
        nonlocal following
        following = anyio.Event()
        engine = Engine(profile, target, clock=running_clock())

        async def fatal_when_waiting() -> None:
            await following.wait()
            await anyio.sleep(0.05)
            engine.stop("the API key was refused")

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(fatal_when_waiting)
            result = await engine.run()
            tasks.cancel_scope.cancel()
        return result

    result = run_virtual(main)
    assert [order.seq for order in target.orders] == [0]  # nothing sent after the stop
    assert result.metrics.not_started["fatal"] == result.metrics.planned_runs - 2


def test_closed_stage_holds_runs_in_flight_at_the_target() -> None:
    profile = profile_of([{"duration": "0.6s", "in_flight": 12}], batch={"runs": 5})
    target = FakeTarget(duration_s=0.02)
    result = run(profile, target)
    assert target.peak_in_flight == 12
    assert {len(o.prompts) for o in target.orders} <= {1, 2, 3, 4, 5}
    assert result.metrics.outcomes[Outcome.COMPLETED] > 12  # runs were topped up as they ended


def test_budget_stops_submitting_and_counts_runs_not_started() -> None:
    profile = profile_of(
        [{"duration": "0.5s", "rate": "20/s"}],
        batch={"runs": 2},
        cost={"budget_cents": 100, "cost_per_run_cents": 8, "charge_multiplier": 2},
    )
    target = FakeTarget()
    result = run(profile, target, enforce_budget=True)
    assert len(target.orders) == 3  # 3 batches x 2 runs x 16 cents = 96 <= 100
    assert result.metrics.not_started == {"budget": 14}
    assert result.metrics.planned_runs == 20


def test_interrupt_keeps_what_was_gathered() -> None:
    profile = profile_of([{"duration": "10s", "rate": "10/s"}])

    async def main() -> EngineResult:
        engine = Engine(profile, FakeTarget(duration_s=0.01), clock=running_clock())
        async with anyio.create_task_group() as tasks:

            async def interrupt_soon() -> None:
                await anyio.sleep(0.3)
                engine.interrupt()

            tasks.start_soon(interrupt_soon)
            return await engine.run()

    result = run_virtual(main)
    assert result.interrupted
    assert result.elapsed_s < 1.0
    assert 2 <= result.metrics.outcomes[Outcome.COMPLETED] <= 4


def test_a_stop_part_way_offers_the_runs_due_over_the_plans_time_up_to_the_stop() -> None:
    # Issue 15: 10 runs/s (a batch of 2 every 0.2 s), interrupted 0.7 s in: 4 batches were due (0, 0.2, 0.4,
    # 0.6 s), and they stand for the plan's first 0.8 s. Offered: 10 runs/s, not 8 runs over the 0.6 s between
    # the first and the last batch due (13.3/s) nor over a few milliseconds when the stop comes early.
    profile = profile_of([{"duration": "10s", "rate": "5/s"}], batch={"runs": 2})

    async def main() -> EngineResult:
        engine = Engine(profile, FakeTarget(duration_s=0.01), clock=running_clock())
        async with anyio.create_task_group() as tasks:

            async def interrupt_soon() -> None:
                await anyio.sleep(0.7)
                engine.interrupt()

            tasks.start_soon(interrupt_soon)
            return await engine.run()

    result = run_virtual(main)
    assert result.interrupted and result.metrics.planned_runs == 8
    load = offered_load(result.metrics, profile, result.elapsed_s).to_json()
    assert load["offered_runs_per_s"] == pytest.approx(10.0)
    assert load["achieved_runs_per_s"] == pytest.approx(10.0)


def test_a_fatal_stop_offers_the_runs_due_and_leaves_out_the_rest_of_the_plan() -> None:
    # A fatal answer 0.3 s into a 10 runs/s plan (a batch of 2 every 0.2 s): batches 0 and 1 were due, batch 1
    # refused; they stand for the plan's first 0.4 s, and the rest of the 10 s plan never became due.
    profile = profile_of([{"duration": "10s", "rate": "5/s"}], batch={"runs": 2})
    fatal = SubmitError("http_400", "the server refused the run request as invalid", fatal=True)
    result = run(profile, FakeTarget(fail=lambda order: fatal if order.seq == 1 else None))
    assert result.stop_cause == "fatal" and result.metrics.planned_runs == 100
    assert result.metrics.not_started == {"fatal": 96}
    assert offered_load(result.metrics, profile, result.elapsed_s).offered_runs_per_s == pytest.approx(10.0)


@pytest.mark.parametrize("stagger", [0.0, 0.05])
def test_run_due_times_include_the_stagger_offset(stagger: float) -> None:
    profile = profile_of([{"duration": "0.1s", "rate": "10/s"}], batch={"runs": 3, "stagger": stagger})
    result = run(profile, FakeTarget())
    dues = sorted(r.due_ns for r in result.records)
    assert [round((d - dues[0]) / 1e9, 3) for d in dues] == [0.0, stagger, 2 * stagger]


def test_a_generator_that_falls_behind_is_flagged() -> None:
    from stressor.metrics import Metrics
    from stressor.report.results import generator_check
    from stressor.timestamps import ClockAnchor

    profile = profile_of([{"duration": "1s", "rate": "20/s"}, {"duration": "1s", "rate": "100/s"}])
    on_time, late = Metrics(ClockAnchor(0, 0)), Metrics(ClockAnchor(0, 0))
    for _ in range(100):
        on_time.dispatch_lag.record_ns(1_500_000)  # 1.5 ms late: within max(2 ms, 10 % of 10 ms)
        late.dispatch_lag.record_ns(5_000_000)
    assert generator_check(on_time, profile).to_json() == {"dispatch_lag_p99": 0.0015, "limit": 0.002, "behind": False}
    assert generator_check(late, profile).to_json()["behind"] is True
    slow = profile_of([{"duration": "10s", "rate": "1/s"}])  # 1 s apart: 100 ms of lag is still fine
    assert generator_check(late, slow).to_json()["limit"] == pytest.approx(0.1)
    assert generator_check(late, slow).to_json()["behind"] is False


def test_runs_in_flight_limit_holds_and_batches_that_find_no_room_are_not_started() -> None:
    profile = profile_of(
        [{"duration": "0.5s", "rate": "40/s"}],
        batch={"runs": 2},
        limits={"max_runs_in_flight": 6, "max_start_delay": "50ms", "adaptive": False},
    )
    target = FakeTarget(duration_s=0.1)  # a batch holds its 2 runs ~0.2 s: 3 batches fill the limit
    result = run(profile, target)
    assert target.peak_in_flight <= 6
    assert result.metrics.not_started["runs_in_flight"] > 0
    started = result.metrics.outcomes[Outcome.COMPLETED]
    assert started + result.metrics.not_started["runs_in_flight"] == result.metrics.planned_runs == 40
    assert result.governor.capacity_wait_s > 0


def test_batches_waiting_for_room_at_an_interrupt_count_as_interrupted() -> None:
    # Issue 15: Ctrl-C counted the batches that were due and waiting for room under an undocumented `stopped`.
    profile = profile_of(
        [{"duration": "10s", "rate": "10/s"}],
        batch={"runs": 2},
        limits={"max_runs_in_flight": 2, "max_start_delay": "60s", "adaptive": False},
    )

    async def main() -> EngineResult:
        # the first batch holds the only room
        engine = Engine(profile, FakeTarget(duration_s=30), clock=running_clock())
        async with anyio.create_task_group() as tasks:

            async def interrupt_soon() -> None:
                await anyio.sleep(0.35)  # batches 1..3 are due by then, all waiting
                engine.interrupt()

            tasks.start_soon(interrupt_soon)
            return await engine.run()

    result = run_virtual(main)
    assert result.interrupted
    assert result.metrics.not_started == {"interrupted": 6}
    assert result.metrics.outcomes == {Outcome.OPEN: 2}
    assert result.metrics.planned_runs == 8


def test_batches_still_waiting_for_room_when_the_grace_period_ends_count_under_the_limit() -> None:
    profile = profile_of(
        [{"duration": "0.2s", "rate": "10/s"}],
        grace="0.2s",
        batch={"runs": 2},
        limits={"max_runs_in_flight": 2, "max_start_delay": "60s", "adaptive": False},
    )
    result = run(profile, FakeTarget(duration_s=30))
    assert result.metrics.not_started == {"runs_in_flight": 2}
    assert result.metrics.outcomes == {Outcome.OPEN: 2}


def test_max_batches_in_flight() -> None:
    profile = profile_of(
        [{"duration": "0.3s", "rate": "20/s"}], limits={"max_batches_in_flight": 1, "max_start_delay": "10s"}
    )
    target = FakeTarget(duration_s=0.03)
    result = run(profile, target)
    assert target.peak_in_flight == 1
    assert result.metrics.outcomes[Outcome.COMPLETED] == 6  # waited for room, none dropped


def test_throttled_creates_are_rejected_and_a_tripped_breaker_stops_the_run() -> None:
    profile = profile_of(
        [{"duration": "2s", "rate": "50/s"}],
        limits={"breaker_min_requests": 5, "breaker_window": "1s"},  # trips once failing half of it
    )

    class Throttling(FakeTarget):
        async def submit(self, order: BatchOrder) -> Submission:
            now = running_clock().now_ns() / 1e9
            self.governor.after_attempt("create", HttpOutcome(429), attempt=0, now=now, now_wall=0)
            raise SubmitError("http_429", "throttled")

    async def main() -> EngineResult:
        target = Throttling()
        engine = Engine(profile, target, clock=running_clock())
        target.governor = engine.governor
        return await engine.run()

    result = run_virtual(main)
    assert result.stop_cause == "breaker"
    assert result.stop_reason is not None and result.stop_reason.startswith("stopped submitting:")
    assert result.metrics.outcomes[Outcome.REJECTED] >= 5
    assert result.metrics.errors["http_429"] == result.metrics.outcomes[Outcome.REJECTED]
    assert result.metrics.not_started["breaker"] > 50  # the rest of the plan is counted, not forgotten
    assert result.metrics.planned_runs == 100
    assert result.elapsed_s < 1.5


def test_creates_still_unanswered_when_the_run_ends_are_reported_open_not_lost() -> None:
    class Hanging(FakeTarget):
        async def submit(self, order: BatchOrder) -> Submission:
            await anyio.sleep(10)
            raise AssertionError("unreachable")

    profile = profile_of([{"duration": "0.2s", "rate": "10/s"}], grace="0.1s", batch={"runs": 2})
    result = run(profile, Hanging())
    assert result.metrics.outcomes == {Outcome.OPEN: 4}
    assert {r.error for r in result.records} == {"create_in_flight"}
    assert result.metrics.planned_runs == 4


def test_progress_snapshots_say_where_the_run_is() -> None:
    from stressor.report.progress import progress_line, progress_lines

    profile = profile_of([{"name": "warm", "duration": "0.5s", "rate": "20/s"}], batch={"runs": 2})
    snapshots = []

    async def main() -> EngineResult:
        engine = Engine(profile, FakeTarget(duration_s=0.02), clock=running_clock())
        async with anyio.create_task_group() as tasks:

            async def watch() -> None:
                await anyio.sleep(0.25)
                snapshots.append(engine.progress())

            tasks.start_soon(watch)
            return await engine.run()

    run_virtual(main)
    [snapshot] = snapshots
    # Read against the snapshot's own clock: a busy machine wakes the watcher late.
    assert snapshot.stage == "warm" and 0.0 < snapshot.stage_left_s < 0.4
    assert snapshot.stage_left_s == pytest.approx(0.5 - snapshot.elapsed_s)
    due_batches = math.floor(20 * snapshot.elapsed_s) + 1  # batch k is due at k / 20 s
    assert abs(snapshot.due - 2 * due_batches) <= 2 and snapshot.completed > 0
    assert snapshot.planned == 20  # the whole plan: 10 batches of 2
    assert snapshot.q2c_p50_s is not None
    line = progress_line(snapshot)
    assert "warm" in line and f"runs planned 20 due {snapshot.due} submitted {snapshot.submitted}" in line
    assert progress_lines(snapshot)[1].startswith("warm ")


class BoundedMetrics(Metrics):
    """Metrics that fail the test rather than let a spinning engine (one that never yields, so no timeout can
    fire) count refused runs for ever: a budget bug once did."""

    def __init__(self) -> None:
        super().__init__(ClockAnchor.now())

    def record_not_started(self, cause: str, runs: int, **slices: Any) -> None:
        super().record_not_started(cause, runs, **slices)
        assert sum(self.not_started.values()) < 10_000, "the engine spins on runs it does not start"


def run_within(seconds: float, profile: Profile, target: FakeTarget, **options: object) -> EngineResult:
    """``run`` with bounded metrics, failed (not hung) if it outlasts ``seconds``."""

    async def main() -> EngineResult:
        with anyio.fail_after(seconds):
            engine = Engine(profile, target, metrics=BoundedMetrics(), clock=running_clock(), **options)  # type: ignore[arg-type]
            return await engine.run()

    return run_virtual(main)


def test_budget_in_a_closed_stage_stops_without_hanging() -> None:
    # 4 in flight, 16 cents a run, 100 cents: 6 runs fit. Runs end fast, so the stage would top up for ever.
    profile = profile_of(
        [{"duration": "3s", "in_flight": 4}],
        batch={"runs": 2},
        cost={"budget_cents": 100, "cost_per_run_cents": 8, "charge_multiplier": 2},
        grace="1s",
    )
    target = FakeTarget(duration_s=0.01)
    result = run_within(10, profile, target, enforce_budget=True)
    submitted = sum(len(o.prompts) for o in target.orders)
    assert submitted == 6 and submitted * 16 <= 100
    assert result.stop_cause == "budget" and "budget" in (result.stop_reason or "")
    assert result.metrics.not_started["budget"] == 2  # the batch the budget refused
    assert result.metrics.planned_runs == submitted + 2
    assert result.metrics.outcomes[Outcome.COMPLETED] == 6
    assert result.elapsed_s < 2.5  # left the 3 s stage once the budget was spent


def test_budget_stop_ends_an_open_stage_early_and_counts_the_rest_of_the_plan() -> None:
    profile = profile_of(
        [{"duration": "1s", "rate": "10/s"}, {"duration": "5s", "rate": "10/s"}],
        cost={"budget_cents": 50, "cost_per_run_cents": 8, "charge_multiplier": 2},
        grace="1s",
    )
    target = FakeTarget(duration_s=0.01)
    result = run_within(10, profile, target, enforce_budget=True)
    assert len(target.orders) == 3  # 3 x 16 = 48 <= 50
    assert result.stop_cause == "budget"
    assert result.metrics.planned_runs == 60  # the whole plan: 10 + 50 runs
    assert result.metrics.not_started == {"budget": 57}
    assert result.elapsed_s < 2  # not the 6 s schedule


def test_slow_submits_and_long_runs_do_not_delay_the_next_batch() -> None:
    # Each create takes 0.3 s and each run 0.5 s, while a batch is due every 50 ms: an engine that waited on
    # the previous batch's answer would start the 20th batch seconds late.
    class Slow(FakeTarget):
        async def submit(self, order: BatchOrder) -> Submission:
            await anyio.sleep(0.3)
            return await super().submit(order)

    profile = profile_of([{"duration": "1s", "rate": "20/s"}])
    metrics = SendTimes()
    target = Slow(duration_s=0.5)
    result = run(profile, target, metrics=metrics)
    assert len(metrics.starts) == 20
    dues = [due for due, _ in metrics.starts]
    assert [round((d - dues[0]) / 1e6) for d in dues] == list(range(0, 1000, 50))  # the plan's due times
    lateness_ms = sorted((sent - due) / 1e6 for due, sent in metrics.starts)
    assert lateness_ms[0] >= 0
    assert lateness_ms[len(lateness_ms) // 2] < 10 and lateness_ms[-1] < 100  # not 300 ms behind per batch
    assert target.peak_in_flight >= 8  # ~10 (0.5 s runs at 20/s) overlapped, as their due times say they must
    assert result.metrics.outcomes == {Outcome.COMPLETED: 20}
