"""``write_results`` is atomic and leaves nothing behind when it cannot finish; the typed document a run builds
is written as the JSON the file format describes, and reads back the same."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from support.documents import results

from stressor.engine import EngineResult
from stressor.governor import Governor
from stressor.metrics import Metrics, Outcome, RunRecord
from stressor.profile import Limits, Profile, parse_profile
from stressor.report.results import build_results, read_results, write_results
from stressor.timestamps import NS_PER_S, ClockAnchor


def test_the_document_is_written_whole(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "results.json"
    write_results(out, results({"schema": "stressor.results/1", "runs": {"planned": 3}}))
    assert orjson.loads(out.read_bytes())["runs"] == {"planned": 3}
    assert sorted(p.name for p in out.parent.iterdir()) == ["results.json"]


def test_a_failed_rename_removes_its_temporary_file(tmp_path: Path) -> None:
    taken = tmp_path / "results.json"
    taken.mkdir()  # a directory where the file should go: the rename fails after the temporary was written
    (taken / "keep").write_text("x")
    with pytest.raises(OSError):
        write_results(taken, results({"schema": "stressor.results/1"}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no .results.json.tmp left
    assert (taken / "keep").read_text() == "x"


def _result() -> tuple[EngineResult, Profile]:
    """A small run's engine result: two variants, one scenario with an expected outcome, runs of every kind."""
    profile = parse_profile(
        {
            "stages": [{"name": "warm", "duration": "2s", "rate": "2/s"}, {"duration": "1s", "in_flight": 3}],
            "variants": [{"name": "spark", "target_id": 1}, {"name": "bolt", "target_id": 2}],
            "grades": {"threshold": 0.5},
        },
        "p.toml",
        Path(),
    )
    anchor = ClockAnchor(wall_ns=1_800_000_000 * NS_PER_S, mono_ns=0)
    metrics = Metrics(anchor)
    records = []
    for seq, outcome in enumerate([Outcome.COMPLETED, Outcome.FAILED, Outcome.OPEN, Outcome.ERRORED, Outcome.UNKNOWN]):
        due = seq * NS_PER_S // 2
        variant = ("spark", "bolt")[seq % 2]
        metrics.record_batch_start(due, due + 1000, variant=variant, scenarios=["default"])
        ended = outcome in (Outcome.COMPLETED, Outcome.FAILED)
        record = RunRecord(
            batch_seq=seq,
            index=0,
            stage=min(seq // 4, 1),
            variant=variant,
            scenario="default",
            outcome=outcome,
            due_ns=due,
            run_id=f"tc_{seq}" if outcome is not Outcome.ERRORED else None,
            detected_ns=due + NS_PER_S // 10 if ended else None,
            created_at=anchor.to_wall_s(due) + 0.01,
            started_at=anchor.to_wall_s(due) + 0.02 if ended else None,
            completed_at=anchor.to_wall_s(due) + 0.08 if ended else None,
            cost_cents=16.0,
            grade=0.75 if outcome is Outcome.COMPLETED else None,
        )
        metrics.record_run(record)
        records.append(record)
    metrics.planned_runs = metrics.submitted_runs = len(records)
    metrics.record_not_started("budget", 2, variant="bolt", scenarios=["default"])
    result = EngineResult(metrics, records, 0, 3 * NS_PER_S, False, None, None, Governor(Limits()), ())
    return result, profile


def test_the_document_a_run_builds_is_the_one_its_file_reads_back(tmp_path: Path) -> None:
    result, profile = _result()
    server = {"run_list": {"order": "newest_first", "offset": "honoured", "page_cap": None, "names": "whole"}}
    built = build_results(result, profile, {"kind": "test-calls", "base_url": "http://x"}, server=server)
    assert built.runs.unknown == 1 and built.runs.not_started == {"budget": 2}
    assert [(stage.name, stage.model) for stage in built.stages or ()] == [("warm", "open"), ("stage-2", "closed")]
    write_results(tmp_path / "r.json", built)
    assert read_results(tmp_path / "r.json") == built  # what the readers get in memory is what a report reads
    assert orjson.loads((tmp_path / "r.json").read_bytes()) == built.to_json()
