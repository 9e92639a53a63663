"""The interval series: what happened in each interval of a run (1 s by default). Pure.

Live samples taken by the engine give what only the client knows as it goes (requests, runs in flight, time
throttled); the run records give the rest after the fact (runs by state, runs ended, errored or rejected, and
the queue-to-completion of the runs seen to end, as an HDR histogram per interval for the ``.hlog``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from stressor.metrics import LatencyRecorder, Outcome, Summary
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
    errored: int  # the create failed in the interval (when the client learned it)
    rejected: int  # the create was refused (429/503) in the interval
    open: int  # created by the server by the interval's end and not yet seen to end by the client
    in_flight: int  # the client's runs in flight at the interval's end (creates not yet answered included)
    requests_per_s: float
    throttled_s: float
    queue_to_completion: Summary  # of the runs the client saw end in the interval
    histogram: str | None  # that histogram, encoded (None when empty)


class Stamped(Protocol):
    """What the series needs of a run: a ``RunRecord``, or the ``RunStamps`` of one."""

    @property
    def outcome(self) -> Outcome: ...
    @property
    def due_ns(self) -> int: ...
    @property
    def detected_ns(self) -> int | None: ...
    @property
    def created_at(self) -> float | None: ...
    @property
    def started_at(self) -> float | None: ...
    @property
    def completed_at(self) -> float | None: ...


class RunStamps(NamedTuple):
    """A run record's stamps alone: a runs log gives them without the cost of making each record."""

    outcome: Outcome
    due_ns: int
    detected_ns: int | None
    created_at: float | None
    started_at: float | None
    completed_at: float | None


@dataclass
class _Stamps:
    """What the series needs of the records, gathered in one walk (the records may be read from a file)."""

    created: list[float] = field(default_factory=list)  # server stamps, seconds since the start
    started: list[float] = field(default_factory=list)
    completed: list[float] = field(default_factory=list)
    failed: list[float] = field(default_factory=list)
    seen_ended: list[float] = field(default_factory=list)  # client: when runs the server created were seen to end
    q2c_ns: dict[int, list[int]] = field(default_factory=dict)  # queue-to-completion by interval seen in
    refused: dict[tuple[int, Outcome], int] = field(default_factory=dict)  # errored / rejected by interval


def _gather(records: Iterable[Stamped], start_wall: float, t0_ns: int, interval_ns: int) -> _Stamps:
    stamps = _Stamps()
    for record in records:
        outcome = record.outcome
        if record.created_at is not None:
            stamps.created.append(record.created_at - start_wall)
            if record.detected_ns is not None:
                stamps.seen_ended.append((record.detected_ns - t0_ns) / NS_PER_S)
        if record.started_at is not None:
            stamps.started.append(record.started_at - start_wall)
        if record.completed_at is not None and outcome in (Outcome.COMPLETED, Outcome.FAILED):
            (stamps.completed if outcome is Outcome.COMPLETED else stamps.failed).append(
                record.completed_at - start_wall
            )
        if outcome in (Outcome.COMPLETED, Outcome.FAILED) and record.detected_ns is not None:
            index = (record.detected_ns - t0_ns) // interval_ns
            stamps.q2c_ns.setdefault(index, []).append(record.detected_ns - record.due_ns)
        elif outcome in (Outcome.ERRORED, Outcome.REJECTED):
            # when the client learned it; records written before that was kept fall back to the due time
            index = ((record.detected_ns or record.due_ns) - t0_ns) // interval_ns
            stamps.refused[index, outcome] = stamps.refused.get((index, outcome), 0) + 1
    for stamp_list in (stamps.created, stamps.started, stamps.completed, stamps.failed, stamps.seen_ended):
        stamp_list.sort()
    return stamps


def interval_series(
    records: Iterable[Stamped],
    samples: Sequence[Sample],
    anchor: ClockAnchor,
    t0_ns: int,
    interval_s: float,
) -> Iterator[Interval]:
    """One ``Interval`` per sample, in order. ``records`` (run records or their stamps) is walked once (only
    the stamps the series needs are kept); each interval's histogram lives only while it is built."""
    stamps = _gather(records, anchor.to_wall_s(t0_ns), t0_ns, round(interval_s * NS_PER_S))
    created, started, completed, failed = stamps.created, stamps.started, stamps.completed, stamps.failed
    ended = sorted(completed + failed)
    previous = Sample(0.0, 0, 0, 0.0)
    for index, sample in enumerate(samples):
        start, end = previous.t_s, sample.t_s
        recorder = LatencyRecorder()
        for latency_ns in stamps.q2c_ns.get(index, ()):
            recorder.record_ns(latency_ns)
        span = end - start
        yield Interval(
            start_s=start,
            end_s=end,
            queued=bisect.bisect_right(created, end) - bisect.bisect_right(started, end),
            in_progress=bisect.bisect_right(started, end) - bisect.bisect_right(ended, end),
            completed=bisect.bisect_right(completed, end) - bisect.bisect_right(completed, start),
            failed=bisect.bisect_right(failed, end) - bisect.bisect_right(failed, start),
            errored=stamps.refused.get((index, Outcome.ERRORED), 0),
            rejected=stamps.refused.get((index, Outcome.REJECTED), 0),
            open=bisect.bisect_right(created, end) - bisect.bisect_right(stamps.seen_ended, end),
            in_flight=sample.runs_in_flight,
            requests_per_s=(sample.requests - previous.requests) / span if span > 0 else 0.0,
            throttled_s=sample.throttled_s - previous.throttled_s,
            queue_to_completion=recorder.summary(),
            histogram=recorder.encode() if recorder.count else None,
        )
        previous = sample
