"""What a worker tells its coordinator, every interval and once at the end. Pure values, picklable.

Histograms travel in HdrHistogram's compressed encoding (``LatencyRecorder`` pickles that way), so a snapshot
is small and the merge is exact. Run records travel once, in the snapshot of the interval in which they
ended, with their client times made relative to the run's shared start (``rebase``): clocks of different
processes and machines share nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stressor.governor import GovernorReport
from stressor.intervals import Sample
from stressor.metrics import LatencyRecorder, RunRecord


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One worker's state at the end of an interval: records and samples new since its last snapshot, every
    counter and batch-level histogram cumulative (so a lost snapshot loses nothing but time)."""

    worker: int
    final: bool
    records: tuple[RunRecord, ...]  # client times relative to the shared start (ns)
    samples: tuple[Sample, ...]  # t_s relative to the shared start
    planned_runs: int
    submitted_runs: int
    cost_cents: float
    requests: dict[str, int]
    not_started: dict[str, int]
    start_lateness: LatencyRecorder
    submit_rtt: LatencyRecorder
    dispatch_lag: LatencyRecorder
    governor: GovernorReport
    server_rate: float | None
    runs_in_flight: int
    # When the worker's batches were due (first, last) and its last create was answered, in seconds from the
    # shared start (None before any): the span of offered and achieved load, whatever records were kept.
    first_due_s: float | None = None
    last_due_s: float | None = None
    last_submit_s: float | None = None
    # After an early stop: the runs of the worker's rest of the plan (never due) and the plan's seconds that ran.
    never_due_runs: int = 0
    plan_ran_s: float | None = None
    # Set in the final snapshot only.
    ended_s: float | None = None
    interrupted: bool = False
    stop_reason: str | None = None
    stop_cause: str | None = None


@dataclass(frozen=True, slots=True)
class WorkerLost:
    """A worker that ended without its final snapshot: killed, crashed, or refused to run twice."""

    worker: int
    reason: str


def rebase(record: RunRecord, from_ns: int, to_ns: int) -> RunRecord:
    """The record with its client times moved from one clock's origin to another's."""
    shift = to_ns - from_ns
    detected = None if record.detected_ns is None else record.detected_ns + shift
    return replace(record, due_ns=record.due_ns + shift, detected_ns=detected)
