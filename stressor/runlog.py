"""The runs log: one JSON line per run as it ends, flushed every half second, so nothing is lost.

A killed stressor (even ``kill -9``) loses at most the last second of runs, and ``stressor report runs.jsonl``
rebuilds the summary from the log alone. The engine keeps no records during a run: the results file's
``run_records`` and interval series are read back from here. The lines: docs/results.md#the-runs-log-outrunsjsonl.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol, overload

import orjson

from stressor.clock import SYSTEM, Clock
from stressor.intervals import RunStamps, Stamped
from stressor.metrics import Metrics, Outcome, RunRecord
from stressor.scores import CallGraded
from stressor.timestamps import NS_PER_S, ClockAnchor

FLUSH_EVERY_S = 0.5  # so a kill loses under a second of runs, even with the event loop stalled a while
COUNTERS_EVERY = 2  # flushes between two counters lines


class RunLog:
    """Appends lines to the log; ``flush`` writes what is buffered (``keep_flushed`` calls it twice a second).
    The file is created at the first flush with something to write: a run that never started (its target
    unreachable, say) leaves no empty log behind."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[bytes] | None = None
        self._pending: list[bytes] = []

    def write(self, line: Mapping[str, Any]) -> None:
        self._pending.append(orjson.dumps(line) + b"\n")

    def flush(self) -> None:
        if self._pending:
            if self._file is None:
                self._file = self.path.open("wb")
            self._file.write(b"".join(self._pending))
            self._pending.clear()
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()


def counters_line(metrics: Metrics, t_s: float) -> dict[str, Any]:
    """The cumulative figures of a run that no run line carries, as of ``t_s`` seconds after the start."""
    return {
        "type": "counters",
        "t_s": t_s,
        "planned": metrics.planned_runs,
        "submitted": metrics.submitted_runs,
        "not_started": dict(metrics.not_started),
        "requests": dict(metrics.requests),
        "cost_cents": metrics.cost_cents,
    }


class Flushable(Protocol):
    """What ``keep_flushed`` needs of a runs log."""

    def write(self, line: Mapping[str, Any]) -> None: ...

    def flush(self) -> None: ...


async def keep_flushed(
    log: Flushable,
    counters: Callable[[], Mapping[str, Any]] | None,
    every_s: float = FLUSH_EVERY_S,
    clock: Clock = SYSTEM,
) -> None:
    """Flush ``log`` every ``every_s``, on a fixed grid (a slow flush does not push the next one back), with a
    counters line (from ``counters``, unless None) every ``COUNTERS_EVERY`` flushes; runs until cancelled."""
    began_ns = clock.now_ns()
    every_ns = round(every_s * NS_PER_S)
    for tick in itertools.count(1):
        await clock.sleep_until(began_ns + tick * every_ns)
        if counters is not None and tick % COUNTERS_EVERY == 0:
            log.write(counters())
        log.flush()


_OUTCOMES = {str(outcome): outcome for outcome in Outcome}


class RunLogError(ValueError):
    """A runs log that cannot be read back; the message names the line."""


@dataclass(frozen=True, slots=True)
class RunsLogContent:
    """What a runs log holds: its start line, run records, last counters line (None when it has none) and
    end line (None when the run was killed), and the clock its records were rebuilt on."""

    start: dict[str, Any]
    records: list[RunRecord]
    counters: dict[str, Any] | None
    end: dict[str, Any] | None
    anchor: ClockAnchor


def read_runs_log(path: Path) -> RunsLogContent:
    """Everything in a runs log, client times rebuilt on a clock that starts at 0. A last line cut off by a
    kill is ignored."""
    lines = _lines(path)
    first = next(lines, None)
    if first is None or first[1].get("type") != "start":
        raise RunLogError(f"{path}: line 1: expected the start line of a stressor runs log")
    start = first[1]
    anchor = ClockAnchor(wall_ns=round(float(start["started_at"]) * NS_PER_S), mono_ns=0)
    records: list[RunRecord] = []
    counters, end = None, None
    for number, line in lines:
        kind = line.get("type")
        if kind == "run":
            if not records and isinstance(line.get("due_at"), float | int) and isinstance(line.get("due_s"), float):
                # The start line's wall time was taken a little before the engine's start: a run's own due
                # time, in both clocks, puts wall times back where the results file has them.
                anchor = ClockAnchor(wall_ns=round((line["due_at"] - line["due_s"]) * NS_PER_S), mono_ns=0)
            records.append(_checked_record(path, number, line, 0))
        elif kind == "counters":
            counters = line
        elif kind == "end":
            end = line
    return RunsLogContent(start, records, counters, end, anchor)


def _checked_record(path: Path, number: int, line: Mapping[str, Any], t0_ns: int) -> RunRecord:
    try:
        return _record(line, t0_ns)
    except (KeyError, TypeError, ValueError) as exc:
        raise RunLogError(f"{path}: line {number}: not a run record ({exc})") from None


GradeOf = Callable[[str | None], CallGraded | None]  # a call's grade (given its id), or None
CallOf = Callable[[str | None], Mapping[str, Any] | None]  # a record's fields from its call's log, given its id


def with_grade(record: RunRecord, grade: CallGraded | None) -> RunRecord:
    """The record with its call's score and ``call_outcome`` joined (each only when the grade has it)."""
    if grade is None or (grade.score is None and grade.call_outcome is None):
        return record
    return replace(
        record,
        grade=grade.score if grade.score is not None else record.grade,
        call_outcome=grade.call_outcome if grade.call_outcome is not None else record.call_outcome,
    )


class LoggedRecords(Sequence[RunRecord]):
    """The run records of a runs log, read from the file each time they are walked (never all held): the
    records of a run whose engine streamed them to the log. ``t0_ns`` puts them back on the engine's clock;
    ``grade_of`` joins the grades known by now (given a call id), ``call_of`` the fields of the call logs
    fetched (``RunRecord``'s names)."""

    def __init__(self, path: Path, t0_ns: int, grade_of: GradeOf | None = None, call_of: CallOf | None = None):
        self.path = path
        self.t0_ns = t0_ns
        self.grade_of = grade_of
        self.call_of = call_of
        self._length: int | None = None

    def with_grades(self, grade_of: GradeOf) -> LoggedRecords:
        """The same records, each with its call's grade (score and call_outcome) when ``grade_of`` knows it."""
        return LoggedRecords(self.path, self.t0_ns, grade_of, self.call_of)

    def with_calls(self, call_of: CallOf) -> LoggedRecords:
        """The same records, each with the fields of its call's log when ``call_of`` knows them."""
        return LoggedRecords(self.path, self.t0_ns, self.grade_of, call_of)

    def __iter__(self) -> Iterator[RunRecord]:
        grade_of, call_of = self.grade_of, self.call_of
        for number, line in _lines(self.path):
            if line.get("type") != "run":
                continue
            record = _checked_record(self.path, number, line, self.t0_ns)
            if grade_of is not None:
                record = with_grade(record, grade_of(record.call_id))
            if call_of is not None and (fields := call_of(record.call_id)) is not None:
                record = replace(record, **fields)
            yield record

    def stamps(self) -> Iterator[RunStamps]:
        """What the interval series needs of each record, read without making the records."""
        t0_ns, path = self.t0_ns, self.path
        for number, line in _lines(path):
            if line.get("type") != "run":
                continue
            try:
                detected_ns = _ns(line.get("detected_s"))
                yield RunStamps(
                    outcome=_OUTCOMES[line["outcome"]],
                    due_ns=t0_ns + round(float(line["due_s"]) * NS_PER_S),
                    detected_ns=None if detected_ns is None else t0_ns + detected_ns,
                    created_at=line.get("created_at"),
                    started_at=line.get("started_at"),
                    completed_at=line.get("completed_at"),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise RunLogError(f"{path}: line {number}: not a run record ({exc})") from None

    def as_json(self) -> Iterator[dict[str, Any]]:
        """The records as ``RunRecord.to_json`` gives them (on this run's clock), grades joined: the lines the
        engine wrote as just that, without rebuilding each record to turn it back (a long run's results file
        would pay that for every run)."""
        grade_of, call_of = self.grade_of, self.call_of
        for _, line in _lines(self.path):
            if line.pop("type", None) != "run":
                continue
            if grade_of is not None and (grade := grade_of(line.get("call_id"))) is not None:
                if grade.score is not None:
                    line["grade"] = grade.score
                if grade.call_outcome is not None:
                    line["call_outcome"] = grade.call_outcome
            if call_of is not None and (fields := call_of(line.get("call_id"))) is not None:
                line.update(fields)
            yield line

    def __len__(self) -> int:
        if self._length is None:
            self._length = sum(1 for _ in self)
        return self._length

    @overload
    def __getitem__(self, index: int) -> RunRecord: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[RunRecord]: ...
    def __getitem__(self, index: int | slice) -> RunRecord | Sequence[RunRecord]:
        return list(self)[index]  # a whole walk: for the odd look, not for loops


def stamps_of(records: Sequence[RunRecord]) -> Iterable[Stamped]:
    """The records for the interval series: a runs log's stamps alone, or the records as they are."""
    return records.stamps() if isinstance(records, LoggedRecords) else records


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """The log's lines, numbered, one at a time (a long run's log may not fit in memory twice)."""
    try:
        file = path.open("rb")
    except OSError as exc:
        raise RunLogError(f"{path}: cannot read ({exc.strerror})") from None
    with file:
        for number, text in enumerate(file, start=1):
            if not text.strip():
                continue
            try:
                line = orjson.loads(text)
            except orjson.JSONDecodeError:
                if not text.endswith(b"\n"):  # the last line, cut in half by a kill
                    return
                raise RunLogError(f"{path}: line {number}: not JSON") from None
            if not isinstance(line, dict):
                raise RunLogError(f"{path}: line {number}: not a JSON object")
            yield number, line


def _ns(seconds: object) -> int | None:
    return None if seconds is None else round(float(seconds) * NS_PER_S)  # type: ignore[arg-type]


def _record(line: Mapping[str, Any], t0_ns: int = 0) -> RunRecord:
    due_ns = _ns(line["due_s"])
    detected_ns = _ns(line.get("detected_s"))
    assert due_ns is not None
    return RunRecord(
        batch_seq=int(line["batch_seq"]),
        index=int(line["index"]),
        stage=int(line["stage"]),
        variant=str(line["variant"]),
        scenario=str(line["scenario"]),
        outcome=Outcome(line["outcome"]),
        due_ns=t0_ns + due_ns,
        run_id=line.get("run_id"),
        batch_id=line.get("batch_id"),
        error=line.get("error"),
        detected_ns=None if detected_ns is None else t0_ns + detected_ns,
        created_at=line.get("created_at"),
        started_at=line.get("started_at"),
        completed_at=line.get("completed_at"),
        stagger_s=float(line.get("stagger_s", 0.0)),
        cost_cents=line.get("cost_cents"),
        call_id=line.get("call_id"),
        grade=line.get("grade"),
        call_outcome=line.get("call_outcome"),
        clock_offset_s=float(line.get("clock_offset_s") or 0.0),
        call_duration_s=line.get("call_duration_s"),
        end_reason=line.get("end_reason"),
        product=line.get("product"),
        billable_minutes=line.get("billable_minutes"),
        billing_total_cents=line.get("billing_total_cents"),
    )
