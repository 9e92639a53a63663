"""The coordinator's merge: n workers' snapshots give the figures one process would have given, exactly."""

from __future__ import annotations

import pickle
import random
from collections import Counter
from dataclasses import replace

import pytest
from sessions import profile_of

from stressor.distributed.snapshot import Snapshot, WorkerLost, rebase
from stressor.distributed.tally import WORKER_LOST, Tally
from stressor.governor import Governor
from stressor.intervals import Sample
from stressor.metrics import LatencyRecorder, Measure, Metrics, Outcome, RunRecord
from stressor.profile import Limits
from stressor.report.results import offered_load
from stressor.timestamps import NS_PER_S, ClockAnchor

PROFILE = profile_of({"stages": [{"duration": "10s", "rate": "5/s"}], "limits": {"max_runs_in_flight": 40}})
ANCHOR = ClockAnchor(wall_ns=1_700_000_000 * NS_PER_S, mono_ns=0)
START_NS = 5 * NS_PER_S  # the shared start on the coordinator's clock


def _record(rng: random.Random, seq: int, worker_start_ns: int) -> RunRecord:
    due = worker_start_ns + rng.randrange(0, 10 * NS_PER_S)
    outcome = rng.choice([Outcome.COMPLETED, Outcome.COMPLETED, Outcome.FAILED, Outcome.ERRORED, Outcome.OPEN])
    ended = outcome in (Outcome.COMPLETED, Outcome.FAILED)
    created = 1_700_000_000 + (due - worker_start_ns) / NS_PER_S
    return RunRecord(
        batch_seq=seq,
        index=0,
        stage=0,
        variant=rng.choice(["spark", "bolt"]),
        scenario=rng.choice(["a", "b", "c"]),
        outcome=outcome,
        due_ns=due,
        run_id=f"run-{seq}" if outcome is not Outcome.ERRORED else None,
        error="http_500" if outcome is Outcome.ERRORED else None,
        detected_ns=due + rng.randrange(10**6, 10**10) if ended else None,
        created_at=created,
        started_at=created + 0.5 if ended else None,
        completed_at=created + 2.0 if ended else None,
    )


def _recorder(values: list[int]) -> LatencyRecorder:
    recorder = LatencyRecorder()
    for value in values:
        recorder.record_us(value)
    return recorder


def _snapshot(
    worker: int,
    records: list[RunRecord],
    *,
    final: bool,
    planned: int,
    lateness: list[int],
    dues: tuple[float, float] | None = None,
) -> Snapshot:
    governor = Governor(Limits(max_runs_in_flight=20))
    governor.throttle_wait_s = 0.5
    governor.client_wait_s = 0.25
    governor.retries["http_503"] = worker + 1
    governor.responses["503"] = worker + 1
    return Snapshot(
        worker=worker,
        final=final,
        records=tuple(records),
        samples=(Sample(1.7, 30, 0, 0.5),) if final else (Sample(1.0, 10 * (worker + 1), 3, 0.5),),
        planned_runs=planned,
        submitted_runs=planned - 1,
        cost_cents=2.5 * planned,
        requests={"create 2xx": planned, "poll 2xx": 2 * planned},
        not_started={"budget": worker},
        start_lateness=_recorder(lateness),
        submit_rtt=_recorder([v * 2 for v in lateness]),
        dispatch_lag=_recorder(lateness),
        governor=governor.report(),
        server_rate=None,
        runs_in_flight=0 if final else 3,
        first_due_s=None if dues is None else dues[0],
        last_due_s=None if dues is None else dues[1],
        last_submit_s=None if dues is None else dues[1] + 0.25,
        ended_s=1.7 if final else None,
    )


def test_the_merge_is_what_one_process_would_have_recorded() -> None:
    rng = random.Random(7)
    worker_starts = [123 * NS_PER_S, 9_000 * NS_PER_S]  # each worker's clock has its own origin
    records = {w: [_record(rng, 2 * i + w, worker_starts[w]) for i in range(300)] for w in (0, 1)}
    lateness = {0: [rng.randrange(1, 5_000) for _ in range(150)], 1: [rng.randrange(1, 90_000) for _ in range(150)]}
    tally = Tally(PROFILE, 2, ANCHOR, START_NS)
    for worker in (0, 1):
        relative = [rebase(r, worker_starts[worker], 0) for r in records[worker]]
        half = len(relative) // 2
        due_s = [r.due_ns / NS_PER_S for r in relative]
        early, whole = (min(due_s[:half]), max(due_s[:half])), (min(due_s), max(due_s))
        # Over the wire and back, in two snapshots: the first one's counters are superseded by the final's.
        for snapshot in (
            _snapshot(worker, relative[:half], final=False, planned=100, lateness=lateness[worker][:10], dues=early),
            _snapshot(
                worker,
                relative[half:],
                final=True,
                planned=300,
                lateness=lateness[worker],
                dues=whole,
            ),
        ):
            tally.add(pickle.loads(pickle.dumps(snapshot)))
    assert tally.finished

    one = Metrics(ANCHOR)
    for worker in (0, 1):
        for record in records[worker]:
            one.record_run(rebase(record, worker_starts[worker], START_NS))
    merged = tally.metrics()
    assert merged.outcomes == one.outcomes and merged.errors == one.errors
    for measure in (Measure.QUEUE_TO_COMPLETION, Measure.TIME_QUEUED, Measure.TIME_IN_PROGRESS):
        assert merged.recorders[measure].summary() == one.recorders[measure].summary()
        assert merged.recorders[measure].encode() == one.recorders[measure].encode()
    assert merged.by_variant.keys() == one.by_variant.keys()
    for pieces, merged_pieces in ((one.by_variant, merged.by_variant), (one.by_scenario, merged.by_scenario)):
        assert merged_pieces.keys() == pieces.keys()
        for name, piece in pieces.items():
            got = merged_pieces[name]
            assert got.measures.keys() == piece.measures.keys()
            for measure, recorder in piece.measures.items():  # every run-level measure, every bucket
                assert got.measures[measure].encode() == recorder.encode()
                assert got.measures[measure].summary() == recorder.summary()
            assert (got.outcomes, got.submitted_runs, got.cost_cents) == (
                piece.outcomes,
                piece.submitted_runs,
                piece.cost_cents,
            )
    # The span of the load: from the first batch due in any worker to the last, and the last create's answer.
    dues = [rebase(r, worker_starts[w], START_NS).due_ns for w in (0, 1) for r in records[w]]
    assert merged.first_due_ns == pytest.approx(min(dues), abs=1)
    assert merged.last_due_ns == pytest.approx(max(dues), abs=1)
    assert merged.last_submit_ns == pytest.approx(max(dues) + NS_PER_S // 4, abs=1)
    both = _recorder(lateness[0] + lateness[1])
    assert merged.recorders[Measure.START_LATENESS].encode() == both.encode()  # lossless, every bucket
    assert merged.recorders[Measure.START_LATENESS].summary() == both.summary()
    assert merged.dispatch_lag.count == 300
    assert (merged.planned_runs, merged.submitted_runs, merged.cost_cents) == (600, 598, 1500.0)
    assert merged.requests == Counter({"create 2xx": 600, "poll 2xx": 1200})
    assert merged.not_started == Counter({"budget": 1})
    governor = tally.governor().report()
    assert governor.throttle_wait_s == 1.0 and governor.retries == {"http_503": 3}
    assert governor.responses == {"429": 0, "503": 3}  # each worker's refusals, summed
    assert governor.client_wait_s == 0.5 and governor.learned_rates == {}
    assert governor.run_limit == 40  # each worker's 20, summed
    # Records come out on the coordinator's clock, every one once.
    result = tally.result()
    assert len(result.records) == 600 and result.t0_ns == START_NS
    assert result.stop_reason is None and not result.interrupted
    assert [(s.t_s, s.requests, s.runs_in_flight) for s in result.samples] == [(1.0, 30, 6), (1.7, 60, 0)]


def test_a_lost_worker_keeps_what_it_streamed_and_its_runs_in_flight_count_open() -> None:
    rng = random.Random(3)
    tally = Tally(PROFILE, 2, ANCHOR, START_NS)
    streamed = [rebase(_record(rng, i, 0), 0, 0) for i in range(20)]
    tally.add(_snapshot(0, streamed, final=False, planned=25, lateness=[100]))
    tally.add(_snapshot(1, [], final=True, planned=10, lateness=[200]))
    assert not tally.finished
    tally.lose(WorkerLost(0, "killed by SIGKILL"))
    tally.add(_snapshot(0, streamed, final=True, planned=99, lateness=[1]))  # nothing after a loss counts
    assert tally.finished
    result = tally.result()
    assert len(result.records) == 20
    open_streamed = sum(r.outcome is Outcome.OPEN for r in streamed)
    assert result.metrics.outcomes[Outcome.OPEN] == open_streamed + 3  # its last snapshot had 3 in flight
    assert result.metrics.planned_runs == 35
    assert result.stop_cause == WORKER_LOST
    assert "worker 0: killed by SIGKILL" in (result.stop_reason or "")
    # The lost worker's last figures are carried to the end of the series.
    assert [(s.requests, s.runs_in_flight) for s in result.samples] == [(40, 3), (40, 3)]


def test_a_workers_own_stop_reason_is_the_runs() -> None:
    tally = Tally(PROFILE, 2, ANCHOR, START_NS)
    tally.add(_snapshot(0, [], final=True, planned=1, lateness=[]))
    tripped = _snapshot(1, [], final=True, planned=1, lateness=[])
    tally.add(replace(tripped, stop_reason="stopped submitting: 30 of 40 requests failed", stop_cause="breaker"))
    result = tally.result()
    assert result.stop_cause == "breaker"
    assert result.stop_reason == "worker 1: stopped submitting: 30 of 40 requests failed"


def test_a_snapshot_that_comes_after_its_workers_final_one_keeps_its_runs_not_its_counters() -> None:
    rng = random.Random(5)
    tally = Tally(PROFILE, 1, ANCHOR, START_NS)
    tally.add(_snapshot(0, [], final=True, planned=6, lateness=[10]))
    late = [_record(rng, i, 0) for i in range(4)]
    assert len(tally.add(_snapshot(0, late, final=False, planned=2, lateness=[1, 2]))) == 4
    result = tally.result()
    assert len(result.records) == 4 and sum(result.metrics.outcomes.values()) == 4
    assert result.metrics.planned_runs == 6 and result.metrics.recorders[Measure.START_LATENESS].count == 1


def test_after_a_stop_the_offered_load_is_the_whole_plans_runs_due_over_its_time_up_to_the_stop() -> None:
    # PROFILE: 5 batches/s of one run. Stopped 1.05 s in: worker 0 (even batches) was due at 0, 0.4, 0.8 s and
    # next at 1.2; worker 1 at 0.2, 0.6, 1.0 and next at 1.4. Together: 6 runs due, standing for the first 1.2 s.
    tally = Tally(PROFILE, 2, ANCHOR, START_NS)
    for worker, next_due_s in ((0, 1.2), (1, 1.4)):
        snapshot = _snapshot(worker, [], final=True, planned=25, lateness=[])
        tally.add(replace(snapshot, never_due_runs=22, plan_ran_s=next_due_s, stop_cause="fatal"))
    metrics = tally.result().metrics
    assert (metrics.planned_runs, metrics.never_due_runs, metrics.plan_ran_s) == (50, 44, 1.2)
    assert offered_load(metrics, PROFILE, 3.0).offered_runs_per_s == pytest.approx(5.0)
