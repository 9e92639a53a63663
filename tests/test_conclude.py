"""The end of a run, pure (``stressor.report.conclude``): the results document, the threshold verdicts, what is
printed and the exit code, which says the most serious thing that happened, whatever else did too."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from stressor.calllogs import CallsReport
from stressor.capacity import Step
from stressor.distributed.tally import WORKER_LOST
from stressor.engine import EngineResult
from stressor.governor import Governor
from stressor.metrics import Metrics, Outcome
from stressor.profile import Limits, parse_profile
from stressor.report.conclude import (
    Conclusion,
    Ending,
    after_writes,
    conclude,
    conclude_capacity,
    ending_of,
)
from stressor.running import ExitCode, Outputs, PreparedRun, Searched
from stressor.session import EMBEDDED_API_KEY, SessionResult, Where
from stressor.thresholds import Status, Verdict, parse_threshold
from stressor.timestamps import NS_PER_S, ClockAnchor

KEY = "sk_live_conclude_0123456789abcdef"


def result_of(
    *,
    completed: int = 30,
    failed: int = 0,
    unknown: int = 0,
    interrupted: bool = False,
    stop: tuple[str, str] | None = None,
) -> EngineResult:
    metrics = Metrics(ClockAnchor.now())
    metrics.outcomes.update({Outcome.COMPLETED: completed, Outcome.FAILED: failed, Outcome.UNKNOWN: unknown})
    metrics.planned_runs = completed + failed + unknown
    reason, cause = stop if stop is not None else (None, None)
    return EngineResult(
        metrics=metrics,
        records=(),
        t0_ns=1,
        ended_ns=1 + 10 * NS_PER_S,
        interrupted=interrupted,
        stop_reason=reason,
        stop_cause=cause,
        governor=Governor(Limits()),
        samples=(),
    )


def verdict(passed: bool) -> Verdict:
    return Verdict(parse_threshold("failure_rate < 1%"), Status.PASSED if passed else Status.FAILED, 0.0, "")


FAILED = (verdict(False), verdict(True))

# Everything that happens in a run at once, and the one exit code that must win (README, "Exit codes").
PRECEDENCE: list[tuple[dict[str, Any], tuple[Verdict, ...], ExitCode]] = [
    ({"interrupted": True, "stop": ("interrupted", "interrupted"), "unknown": 2}, FAILED, ExitCode.INTERRUPTED),
    ({"stop": ("5 failures in a row", "breaker"), "unknown": 2}, FAILED, ExitCode.BREAKER),
    ({"stop": ("worker 1 of 2 lost: killed", WORKER_LOST), "unknown": 2}, FAILED, ExitCode.WORKER_LOST),
    ({"stop": ("the API answered 401", "fatal"), "unknown": 2}, FAILED, ExitCode.TARGET),
    ({"unknown": 2}, FAILED, ExitCode.UNKNOWN_RUNS),
    ({"stop": ("the budget is spent", "budget"), "unknown": 2}, (), ExitCode.UNKNOWN_RUNS),
    ({}, FAILED, ExitCode.THRESHOLDS),
    ({"stop": ("threshold breached: failure_rate < 1% failed", "threshold")}, (), ExitCode.THRESHOLDS),
    ({"stop": ("the budget is spent", "budget")}, (verdict(True),), ExitCode.OK),
    ({"failed": 3}, (), ExitCode.OK),  # failed calls are figures, not errors
]


@pytest.mark.parametrize(("happened", "verdicts", "code"), PRECEDENCE)
def test_the_exit_code_is_the_most_serious_thing_that_happened(
    happened: dict[str, Any], verdicts: tuple[Verdict, ...], code: ExitCode
) -> None:
    assert ending_of(result_of(**happened), verdicts).code is code


def test_each_ending_but_success_and_ctrl_c_says_why_in_one_sentence() -> None:
    assert ending_of(result_of(), ()) == Ending(ExitCode.OK)
    assert ending_of(result_of(interrupted=True), ()) == Ending(ExitCode.INTERRUPTED)  # Ctrl-C said it already
    said = {code: ending_of(result_of(**happened), verdicts).sentence for happened, verdicts, code in PRECEDENCE}
    assert said[ExitCode.BREAKER] == "stopped early by the breaker: 5 failures in a row"
    assert said[ExitCode.WORKER_LOST] == "worker 1 of 2 lost: killed"
    assert said[ExitCode.TARGET] == "stopped early: the API answered 401"
    assert str(said[ExitCode.UNKNOWN_RUNS]).startswith("2 runs are unknown: stressor could not tell")
    assert ending_of(result_of(), FAILED).sentence == "1 of 2 thresholds failed"


def test_an_output_that_could_not_be_written_comes_before_every_other_ending(tmp_path: Path) -> None:
    interrupted = Conclusion({}, (), (), (), ending_of(result_of(interrupted=True), FAILED))
    log = tmp_path / "r.runs.jsonl"
    ending = after_writes(interrupted, ["could not write the results to /full/r.json: No space left"], log)
    assert ending.code is ExitCode.USAGE
    assert ending.sentence == (
        f"could not write the results to /full/r.json: No space left; the runs log {log} has every run "
        f"('stressor report {log}' rebuilds the results)"
    )
    assert after_writes(interrupted, [], log) == interrupted.ending


def prepared(tmp_path: Path, *, embedded: bool, thresholds: tuple[str, ...] = ()) -> PreparedRun:
    profile = parse_profile({"stages": [{"duration": "10s", "rate": "1/s"}]}, "p.toml", Path())
    where = Where(None, EMBEDDED_API_KEY) if embedded else Where("https://api.example.com", KEY)
    outputs = Outputs(tmp_path / "out" / "r.json", tmp_path / "out" / "r.runs.jsonl", html=tmp_path / "r.html")
    return PreparedRun(profile, where, tuple(parse_threshold(t) for t in thresholds), outputs)


def outcome_of(result: EngineResult, base_url: str) -> SessionResult:
    return SessionResult(engine=result, base_url=base_url, webhook_url=None, webhooks=None, late_polls=0)


def test_a_run_concludes_in_its_document_verdicts_lines_and_exit_code_without_writing_anything(
    tmp_path: Path,
) -> None:
    run = prepared(tmp_path, embedded=False, thresholds=("failure_rate < 1%", "completed >= 1"))
    conclusion = conclude(outcome_of(result_of(completed=9, failed=1), "https://api.example.com"), run)
    document = conclusion.document.to_json()
    assert document["schema"] == "stressor.results/1"
    assert document["runs"]["completed"] == 9 and document["failure_rate"] == pytest.approx(0.1)
    assert document["thresholds"] == ["failure_rate < 1%", "completed >= 1"]  # saved for `stressor report`
    assert document["target"]["embedded_simulator"] is False
    assert KEY not in str(document) and document["target"]["api_key"].startswith("sk_live_")
    assert [v.passed for v in conclusion.verdicts] == [False, True]
    summary, verdicts, paths = conclusion.lines
    assert summary.startswith("stressor: profile 'p', 10.0s against https://api.example.com")
    assert "failure rate: 10.0%" in summary
    assert "thresholds: 1 of 2 passed" in verdicts and "FAIL     failure_rate < 1%" in verdicts
    assert paths == f"\nresults: {run.outputs.results}  runs log: {run.outputs.runs_log}"
    assert conclusion.ending == Ending(ExitCode.THRESHOLDS, "1 of 2 thresholds failed")
    assert not (tmp_path / "out").exists() and not (tmp_path / "r.html").exists()


def test_an_embedded_run_has_no_key_in_its_target_and_no_verdict_lines(tmp_path: Path) -> None:
    conclusion = conclude(outcome_of(result_of(), "http://127.0.0.1:5000"), prepared(tmp_path, embedded=True))
    assert conclusion.document.to_json()["target"] == {
        "kind": "test-calls",
        "embedded_simulator": True,
        "base_url": "http://127.0.0.1:5000",
    }
    assert conclusion.verdicts == () and len(conclusion.lines) == 2
    assert conclusion.ending == Ending(ExitCode.OK)


def step(level: float, held: bool, *, recheck: bool = False) -> Step:
    return Step(level, 0.1, 0.2, 0.3, 0.0, 1.0, (verdict(held),), recheck=recheck)


@pytest.mark.parametrize(
    ("steps", "interrupted", "line", "code"),
    [
        (
            (step(2, True), step(4, False), step(4, False, recheck=True)),
            False,
            "knee: held at 2, broke at 4 runs in flight",
            ExitCode.OK,
        ),
        (
            (step(2, True), step(4, False), step(4, True, recheck=True)),
            False,
            "no step broke the SLO up to 8 runs in flight; the last held at 4",
            ExitCode.OK,
        ),
        (
            (step(2, False), step(2, False, recheck=True)),
            False,
            "knee: broke at the lowest level tried, broke at 2 runs in flight",
            ExitCode.OK,
        ),
        ((step(2, True),), False, "no step broke the SLO up to 8 runs in flight; the last held at 2", ExitCode.OK),
        (
            (step(2, True),),
            True,
            "knee so far (interrupted): held up to 2 runs in flight; no step broke the SLO yet",
            ExitCode.INTERRUPTED,
        ),
        (
            (step(2, True), step(4, False)),
            True,
            "knee so far (interrupted): held up to 2 runs in flight; 4 broke once and was not re-checked",
            ExitCode.INTERRUPTED,
        ),
        ((), True, "no step ran to its end", ExitCode.INTERRUPTED),
    ],
)
def test_a_capacity_search_concludes_in_its_knee_and_exits_130_only_when_interrupted(
    steps: tuple[Step, ...], interrupted: bool, line: str, code: ExitCode
) -> None:
    slos = [parse_threshold("failure_rate < 1%")]
    done = conclude_capacity(
        Searched(steps, interrupted),
        model="closed",
        load_label="runs in flight",
        slos=slos,
        max_level=8,
        resolution=1,
    )
    assert (done.lines[0], done.ending.code) == (line, code)
    assert done.document["interrupted"] is interrupted
    assert [row["level"] for row in done.document["steps"]] == [s.level for s in steps]  # every measurement
    assert [row["recheck"] for row in done.document["steps"]] == [s.recheck for s in steps]


def test_precedence_covers_every_exit_code_a_run_can_end_with() -> None:
    # 1 (crash), 6 (compare) are not a run's; 2 comes from the writes (above)
    ran = {code for _, _, code in PRECEDENCE}
    assert ran == set(ExitCode) - {ExitCode.CRASH, ExitCode.USAGE, ExitCode.REGRESSION}


def test_what_came_of_the_call_logs_is_in_the_document_and_said_with_the_paths(tmp_path: Path) -> None:
    calls = CallsReport(
        log=str(tmp_path / "r.calls.jsonl"),
        fetched=7,
        failed={"http_404": 2, "not_fetched": 1},
        transcripts=6,
        transcripts_failed={"timeout": 1},
    )
    outcome = replace(outcome_of(result_of(completed=10), "http://127.0.0.1:5000"), calls=calls)
    conclusion = conclude(outcome, prepared(tmp_path, embedded=True))
    assert conclusion.document.to_json()["calls"] == {
        "log": str(tmp_path / "r.calls.jsonl"),
        "fetched": 7,
        "failed": {"http_404": 2, "not_fetched": 1},
        "transcripts": 6,
        "transcripts_failed": {"timeout": 1},
    }
    assert conclusion.lines[-1].endswith(
        f"  calls log: {tmp_path / 'r.calls.jsonl'} (7 call logs, 3 failed: http_404 2, not_fetched 1; "
        "6 transcripts, 1 failed)"
    )
    unwritten = replace(outcome, calls=replace(calls, log=None, failed={}, transcripts=0, transcripts_failed={}))
    assert conclude(unwritten, prepared(tmp_path, embedded=True)).lines[-1].endswith(
        "  calls log: none written (7 call logs)"
    )
