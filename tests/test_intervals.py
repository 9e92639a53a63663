"""The interval series and its HDR interval log, on records whose truth is known."""

from __future__ import annotations

from pathlib import Path

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from stressor.intervals import Sample, interval_series
from stressor.metrics import HIGHEST_US, Outcome, RunRecord
from stressor.report.hlog import write_hlog
from stressor.timestamps import ClockAnchor

NS = 1_000_000_000
START_WALL = 1_800_000_000.0
ANCHOR = ClockAnchor(wall_ns=int(START_WALL) * NS, mono_ns=0)  # monotonic 0 is the start of the run


def run(due: float, created: float, started: float | None, ended: float | None, seen: float | None, **kw: object):
    return RunRecord(
        batch_seq=0,
        index=0,
        stage=0,
        variant="v",
        scenario="s",
        outcome=kw.get("outcome", Outcome.COMPLETED if seen is not None else Outcome.OPEN),  # type: ignore[arg-type]
        due_ns=round(due * NS),
        detected_ns=None if seen is None else round(seen * NS),
        created_at=START_WALL + created,
        started_at=None if started is None else START_WALL + started,
        completed_at=None if ended is None else START_WALL + ended,
    )


RECORDS = [
    run(0.0, 0.01, 0.02, 0.5, 0.6),  # ends in interval 0
    run(0.2, 0.21, 1.5, 2.5, 2.55),  # queued at t=1, in progress at t=2, ends in interval 2
    run(1.1, 1.11, 1.2, 1.9, 2.1, outcome=Outcome.FAILED),  # ends (server) in 1, seen in 2
    run(1.5, 1.51, None, None, None),  # still queued at the end: open
]
SAMPLES = [Sample(1.0, 10, 2, 0.0), Sample(2.0, 25, 2, 0.5), Sample(3.0, 30, 1, 0.5)]


def test_states_at_each_interval_end_and_ends_within_it() -> None:
    series = list(interval_series(RECORDS, SAMPLES, ANCHOR, 0, 1.0))
    assert [(i.queued, i.in_progress) for i in series] == [(1, 0), (1, 1), (1, 0)]
    assert [(i.completed, i.failed) for i in series] == [(1, 0), (0, 1), (1, 0)]
    # Open: created by the server and not yet seen to end by the client; in flight: the client's own count.
    assert [i.open for i in series] == [1, 3, 1]
    assert [i.in_flight for i in series] == [2, 2, 1]
    assert [(i.errored, i.rejected) for i in series] == [(0, 0)] * 3
    assert [i.requests_per_s for i in series] == [10.0, 15.0, 5.0]
    assert [i.throttled_s for i in series] == [0.0, 0.5, 0.0]
    # Queue-to-completion by the interval in which the client saw the end: 0.6 s; then 2.35 s and 1.0 s.
    assert [i.queue_to_completion.count for i in series] == [1, 0, 2]
    assert series[0].queue_to_completion.max_s == 0.6
    assert series[1].histogram is None
    assert series[2].queue_to_completion.max_s == 2.35


def test_the_hlog_reads_back_with_hdrhistograms_own_reader(tmp_path: Path) -> None:
    path = tmp_path / "q2c.hlog"
    written = write_hlog(path, interval_series(RECORDS, SAMPLES, ANCHOR, 0, 1.0), START_WALL)
    assert written == 2
    reader = HistogramLogReader(str(path), HdrHistogram(1, HIGHEST_US, 3))
    first = reader.get_next_interval_histogram()
    second = reader.get_next_interval_histogram()
    assert reader.get_next_interval_histogram() is None
    assert first.get_total_count() == 1
    assert first.get_max_value() == first.get_highest_equivalent_value(600_000)
    assert second.get_total_count() == 2
    text = path.read_text()
    assert "#[StartTime: 1800000000.000" in text
    assert "#[BaseTime: 1800000000.000" in text


def test_errored_and_rejected_runs_count_in_the_interval_the_client_learned_of_them() -> None:
    def refused(seq: int, outcome: Outcome, due: float, learned: float | None) -> RunRecord:
        detected = None if learned is None else round(learned * NS)
        return RunRecord(seq, 0, 0, "v", "s", outcome, due_ns=round(due * NS), error="x", detected_ns=detected)

    more = [
        refused(10, Outcome.ERRORED, 0.1, 1.2),
        refused(11, Outcome.ERRORED, 0.1, 1.3),
        refused(12, Outcome.REJECTED, 2.2, 2.4),
        refused(13, Outcome.REJECTED, 0.5, None),  # an older record with no client end time: its due time
    ]
    series = list(interval_series(RECORDS + more, SAMPLES, ANCHOR, 0, 1.0))
    assert [(i.errored, i.rejected) for i in series] == [(0, 1), (2, 0), (0, 1)]
    # none of them was created, so none is open; the runs that were are counted as before
    assert [i.open for i in series] == [1, 3, 1]
    assert [(i.completed, i.failed) for i in series] == [(1, 0), (0, 1), (1, 0)]


def test_records_are_walked_once_so_they_may_come_from_a_file() -> None:
    walks = []

    class OneWalk:
        def __iter__(self):  # type: ignore[no-untyped-def]
            walks.append(1)
            return iter(RECORDS)

    series = list(interval_series(OneWalk(), SAMPLES, ANCHOR, 0, 1.0))  # type: ignore[arg-type]
    assert len(walks) == 1
    assert series == list(interval_series(RECORDS, SAMPLES, ANCHOR, 0, 1.0))
