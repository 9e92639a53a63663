"""The runs log: its flush cadence (on virtual time), its counters lines, reading it back, and the summary rebuilt
from it (the command in process, on virtual time)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from support.cli import stressor_here
from support.virtual import VIRTUAL, VirtualTimeLoop, clock

from stressor.metrics import Metrics, Outcome, RunRecord
from stressor.report.results import results_from_runs_log
from stressor.runlog import (
    COUNTERS_EVERY,
    FLUSH_EVERY_S,
    LoggedRecords,
    RunLog,
    RunLogError,
    counters_line,
    keep_flushed,
    stamps_of,
)
from stressor.scores import CallGraded
from stressor.timestamps import ClockAnchor


@pytest.fixture
def anyio_backend() -> object:
    return VIRTUAL


def now_s() -> float:
    return clock().now_ns() / 1e9


class FakeLog:
    """Records when it was flushed and what was written."""

    def __init__(self) -> None:
        self.flushed: list[float] = []
        self.lines: list[Mapping[str, Any]] = []

    def write(self, line: Mapping[str, Any]) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        self.flushed.append(now_s())


@pytest.mark.anyio
async def test_the_log_is_flushed_twice_a_second_on_a_grid_with_a_counters_line_every_second() -> None:
    log = FakeLog()
    began = now_s()
    with anyio.move_on_after(2.2):
        await keep_flushed(log, lambda: {"type": "counters"}, clock=clock())
    assert FLUSH_EVERY_S <= 0.5
    assert len(log.flushed) == 4
    gaps = [b - a for a, b in zip([began, *log.flushed], log.flushed, strict=False)]
    assert all(0.45 <= gap < 0.95 for gap in gaps), gaps  # never as late as a second, however slow the loop
    assert len(log.lines) == 4 // COUNTERS_EVERY


@pytest.mark.anyio
async def test_a_slow_flush_does_not_push_the_next_one_back() -> None:
    class SlowLog(FakeLog):
        def flush(self) -> None:
            super().flush()
            loop = asyncio.get_running_loop()
            assert isinstance(loop, VirtualTimeLoop)
            loop.advance(0.3)  # a stalled disk, the loop blocked

    log = SlowLog()
    began = now_s()
    with anyio.move_on_after(2.2):
        await keep_flushed(log, lambda: {"type": "counters"}, clock=clock())
    # on the grid 0.5, 1.0, 1.5, 2.0 s: a loop that slept 0.5 s after each flush would reach only 3
    assert len(log.flushed) == 4, [t - began for t in log.flushed]


def record(seq: int, outcome: Outcome, **fields: Any) -> RunRecord:
    return RunRecord(batch_seq=seq, index=0, stage=0, variant="v", scenario="s", outcome=outcome, **fields)


def test_logged_records_read_back_on_the_engines_clock_with_grades_joined(tmp_path: Path) -> None:
    anchor, t0 = ClockAnchor(wall_ns=1_800_000_000 * 10**9, mono_ns=5 * 10**9), 7 * 10**9
    records = [
        record(0, Outcome.COMPLETED, due_ns=t0 + 1_234_567, detected_ns=t0 + 987_654_321, run_id="a", call_id="c1"),
        record(1, Outcome.ERRORED, due_ns=t0 + 500_000_001, detected_ns=t0 + 600_000_000, error="timeout"),
        record(2, Outcome.OPEN, due_ns=t0 + 3, run_id="b", created_at=1_800_000_001.5, cost_cents=16.0),
    ]
    log = RunLog(tmp_path / "runs.jsonl")
    log.write({"type": "start", "started_at": 1_800_000_000.0})
    for r in records:
        log.write({"type": "run", **r.to_json(anchor, t0)})
    log.write(counters_line(Metrics(anchor), 1.0))
    log.close()
    back = LoggedRecords(log.path, t0)
    assert list(back) == records  # exact, nanoseconds included
    assert len(back) == 3 and back[2] == records[2]
    grade = CallGraded("c1", 0.75, 75.0, "completed", "failure", "grader", None)
    graded = back.with_grades(lambda call_id: grade if call_id == "c1" else None)
    assert [(r.grade, r.call_outcome) for r in graded] == [(0.75, "failure"), (None, None), (None, None)]
    # the fields of the call logs fetched, joined by call id, with the grades
    logged = graded.with_calls(lambda call_id: {"call_duration_s": 55, "product": "bolt"} if call_id == "c1" else None)
    joined = [(r.grade, r.call_duration_s, r.product) for r in logged]
    assert joined == [(0.75, 55, "bolt"), (None, None, None), (None, None, None)]
    lines = list(logged.as_json())
    assert lines == [r.to_json(anchor, t0) for r in logged]
    assert lines[0]["call_duration_s"] == 55 and "call_duration_s" not in lines[1]  # left out when not known
    # the lines as they are, for the results file: what to_json makes of the records read back
    assert list(graded.as_json()) == [r.to_json(anchor, t0) for r in graded]
    assert list(back.as_json()) == [r.to_json(anchor, t0) for r in records]
    # the interval series' stamps, read without the records: the same values, nanoseconds included
    fields = ("outcome", "due_ns", "detected_ns", "created_at", "started_at", "completed_at")
    assert [tuple(s) for s in stamps_of(back)] == [tuple(getattr(r, f) for f in fields) for r in records]
    assert stamps_of(records) is records


def test_stamps_of_a_broken_run_line_name_it(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_bytes(b'{"type": "start", "started_at": 1.0}\n{"type": "run", "outcome": "lost", "due_s": 0.5}\n')
    with pytest.raises(RunLogError, match="line 2: not a run record"):
        list(stamps_of(LoggedRecords(path, 0)))


def test_a_line_cut_by_a_kill_is_skipped_and_a_broken_line_inside_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_bytes(b'{"type": "start", "started_at": 1.0}\n{"type": "ru')
    assert results_from_runs_log(path).run_records == ()
    path.write_bytes(b'{"type": "start", "started_at": 1.0}\n{"type": "ru\n{"type": "end", "ended_at": 2.0}\n')
    with pytest.raises(ValueError, match="line 2: not JSON"):
        results_from_runs_log(path)


QUICK = """
name = "quick"
grace = "5s"
[target]
poll_interval = "20ms"
[batch]
runs = 3
stagger = "5ms"
[[variants]]
name = "a"
target_id = 1
[[variants]]
name = "b"
target_id = 2
[scenarios]
prompts = ["one", "two", "three"]
[simulator]
failure_rate = 0.3
seed = 7
[[stages]]
duration = "2s"
rate = "5/s"
"""


def test_the_summary_rebuilt_from_the_log_matches_the_results_for_what_the_log_carries(tmp_path: Path) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(QUICK)
    out = tmp_path / "r.json"
    done = stressor_here("run", str(profile), "--out", str(out), "--progress", "0")
    assert done.returncode == 0, done.stderr
    results = orjson.loads(out.read_bytes())
    rebuilt = results_from_runs_log(tmp_path / "r.runs.jsonl").to_json()
    assert results["runs"]["failed"] > 0  # the failure rate of the simulator shows in both
    for key in ("runs", "errors", "requests"):
        assert rebuilt[key] == results[key], key
    for key in ("failure_rate", "estimated_cost_cents", "elapsed_s", "started_at"):
        assert rebuilt[key] == pytest.approx(results[key], abs=0.01), key
    assert len(rebuilt["run_records"]) == len(results["run_records"])
    for ours, theirs in zip(rebuilt["run_records"], results["run_records"], strict=True):
        assert {k: v for k, v in ours.items() if k != "due_at"} == {k: v for k, v in theirs.items() if k != "due_at"}
        assert ours["due_at"] == pytest.approx(theirs["due_at"], abs=1e-6)
    for measure in ("queue_to_completion", "time_queued", "time_in_progress", "detection_delay"):
        ours, theirs = rebuilt["measures"][measure], results["measures"][measure]
        assert {k: v for k, v in ours.items() if k not in ("source", "hdr")} == pytest.approx(
            {k: v for k, v in theirs.items() if k not in ("source", "hdr")}, rel=1e-6, abs=2e-5
        ), measure  # detection delay crosses clocks: a sub-microsecond shift may move a value one HDR bucket
    for piece in ("variants", "scenarios"):
        assert set(rebuilt[piece]) == set(results[piece]) and len(results[piece]) >= 2
        for name, figures in results[piece].items():
            assert rebuilt[piece][name]["outcomes"] == figures["outcomes"]
            assert rebuilt[piece][name]["queue_to_completion"] == pytest.approx(figures["queue_to_completion"])
    # what the log does not carry says so rather than showing zeros as if measured
    for measure in ("start_lateness", "submit_rtt"):
        assert rebuilt["measures"][measure]["source"] == "not in the runs log"
        assert results["measures"][measure]["count"] > 0


def test_a_log_with_nothing_written_leaves_no_file(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "runs.jsonl")
    log.flush()
    log.close()  # a run whose target could not be reached: no empty log for `stressor report` to refuse
    assert not log.path.exists()
    log = RunLog(tmp_path / "runs.jsonl")
    log.write({"type": "start", "started_at": 1.0})
    log.flush()
    assert log.path.read_bytes() == b'{"type":"start","started_at":1.0}\n'
    log.close()
