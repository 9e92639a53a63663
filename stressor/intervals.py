"""The interval series: what happened in each interval of a run (1 s by default). Pure.

Two sources meet here. Live samples, taken by the engine at the end of every interval, give what only the
client knows as it goes: requests sent, runs in flight, time throttled. The run records give the rest after
the fact, exactly: runs queued and in progress at each interval's end (from the server's stamps), runs that
ended in it, and the queue-to-completion of the runs the client saw end in it, as an HDR histogram per
interval (for the ``.hlog`` interval log).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from stressor.metrics import LatencyRecorder, Outcome, RunRecord, Summary
from stressor.timestamps import NS_PER_S, ClockAnchor


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative client-side figures at ``t_s`` seconds after the start."""

    t_s: float
    requests: int
    runs_in_flight: int
    throttled_s: float


@dataclass(frozen=True, slots=True)
class Interval:
    """The figures of one interval [start_s, end_s)."""

    start_s: float
    end_s: float
    queued: int  # at the interval's end, by the server's stamps
    in_progress: int
    completed: int  # ended in the interval, by the server's stamps
    failed: int
    open: int  # in flight for the client at the interval's end
    requests_per_s: float
    throttled_s: float
    queue_to_completion: Summary  # of the runs the client saw end in the interval
    histogram: str | None  # that histogram, encoded (None when empty)


def _sorted(values: Sequence[float | None]) -> list[float]:
    return sorted(v for v in values if v is not None)


def _ended_by_interval(records: Sequence[RunRecord], t0_ns: int, interval_ns: int) -> dict[int, list[RunRecord]]:
    by_interval: dict[int, list[RunRecord]] = {}
    for record in records:
        if record.detected_ns is not None and record.outcome in (Outcome.COMPLETED, Outcome.FAILED):
            by_interval.setdefault((record.detected_ns - t0_ns) // interval_ns, []).append(record)
    return by_interval


def interval_series(
    records: Sequence[RunRecord],
    samples: Sequence[Sample],
    anchor: ClockAnchor,
    t0_ns: int,
    interval_s: float,
) -> Iterator[Interval]:
    """One ``Interval`` per sample, in order. Lazy: each interval's histogram lives only while it is built."""
    start_wall = anchor.to_wall_s(t0_ns)

    def relative(stamps: Sequence[float | None]) -> list[float]:
        return [s - start_wall for s in _sorted(stamps)]

    created = relative([r.created_at for r in records])
    started = relative([r.started_at for r in records])
    completed = relative([r.completed_at for r in records if r.outcome is Outcome.COMPLETED])
    failed = relative([r.completed_at for r in records if r.outcome is Outcome.FAILED])
    ended = sorted(completed + failed)
    detected = _ended_by_interval(records, t0_ns, round(interval_s * NS_PER_S))
    previous = Sample(0.0, 0, 0, 0.0)
    for index, sample in enumerate(samples):
        start, end = previous.t_s, sample.t_s
        recorder = LatencyRecorder()
        for record in detected.get(index, ()):
            assert record.detected_ns is not None
            recorder.record_ns(record.detected_ns - record.due_ns)
        span = end - start
        yield Interval(
            start_s=start,
            end_s=end,
            queued=bisect.bisect_right(created, end) - bisect.bisect_right(started, end),
            in_progress=bisect.bisect_right(started, end) - bisect.bisect_right(ended, end),
            completed=bisect.bisect_right(completed, end) - bisect.bisect_right(completed, start),
            failed=bisect.bisect_right(failed, end) - bisect.bisect_right(failed, start),
            open=sample.runs_in_flight,
            requests_per_s=(sample.requests - previous.requests) / span if span > 0 else 0.0,
            throttled_s=sample.throttled_s - previous.throttled_s,
            queue_to_completion=recorder.summary(),
            histogram=recorder.encode() if recorder.count else None,
        )
        previous = sample
