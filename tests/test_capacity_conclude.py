"""The end of a capacity search, pure (``stressor.report.conclude``): the step table with its header, the load
sustained in one sentence, every measurement kept for --out (re-checks marked), and the thresholds on the
sustained step."""

from __future__ import annotations

from stressor.capacity import Knee, Step
from stressor.document import load_results
from stressor.report.conclude import (
    about,
    capacity_header,
    capacity_row,
    conclude_capacity,
    sustained_sentence,
)
from stressor.running import ExitCode, Searched
from stressor.thresholds import Status, Verdict, parse_threshold, parse_thresholds

SLOS = parse_thresholds(["queue_to_completion.p95 < 90s", "failure_rate < 5%"])


def step(level: float, held: bool, *, runs_per_s: float = 1.0, recheck: bool = False, phase: str = "climb") -> Step:
    verdict = Verdict(SLOS[0], Status.PASSED if held else Status.FAILED, 95.0 if not held else 10.0,
                      "was 10s" if held else "was 1m35s, 5.56% over 90s")  # fmt: skip
    results = load_results({"load": {"achieved_runs_per_s": runs_per_s}, "runs": {"submitted": 10}})
    return Step(level, 1.0, 10.0 if held else 95.0, 12.0, 0.0, runs_per_s, (verdict,), achieved_per_s=runs_per_s,
                phase=phase, recheck=recheck, results=results)  # type: ignore[arg-type]  # fmt: skip


def test_the_sustained_load_in_one_sentence() -> None:
    found = Knee(step(38, True, runs_per_s=19.2), step(40, False))
    sentence = sustained_sentence(found, model="closed", load_label="runs in flight", slos=SLOS, max_level=64)
    assert sentence == (
        "sustains about 19 runs/s (closed: 38 runs in flight) with queue_to_completion.p95 < 90s and failure_rate < 5%"
    )
    open_model = sustained_sentence(
        Knee(step(4, True, runs_per_s=1.234), step(6, False)),
        model="open", load_label="batches per second", slos=SLOS[:1], max_level=64,
    )  # fmt: skip
    assert open_model == "sustains about 1.2 runs/s (open: 4 batches per second) with queue_to_completion.p95 < 90s"


def test_no_break_and_no_hold_say_so() -> None:
    top = sustained_sentence(Knee(step(64, True, runs_per_s=30), None), model="closed", load_label="runs in flight",
                             slos=SLOS[:1], max_level=64)  # fmt: skip
    assert top == (
        "sustains at least about 30 runs/s (closed: 64 runs in flight, the highest tried) with "
        "queue_to_completion.p95 < 90s; no step broke it; raise --max to find the knee"
    )
    none = sustained_sentence(Knee(None, step(1, False)), model="closed", load_label="runs in flight",
                              slos=SLOS[:1], max_level=64)  # fmt: skip
    assert none == "sustains none of the loads tried: even 1 runs in flight broke queue_to_completion.p95 < 90s"


def test_about_keeps_two_significant_figures_without_exponents() -> None:
    assert [about(x) for x in (123.4, 19.4, 9.96, 1.234, 0.0456)] == [
        "123 runs/s",
        "19 runs/s",
        "10 runs/s",
        "1.2 runs/s",
        "0.046 runs/s",
    ]


def test_the_table_has_a_header_and_a_row_per_measurement_in_its_columns() -> None:
    header = capacity_header("runs in flight")
    assert header.split() == ["runs", "in", "flight", "step", "p50", "p95", "p99", "failures", "runs/s", "SLO"]
    rows = [capacity_row(step(10, False)), capacity_row(step(10, False, recheck=True)),
            capacity_row(step(9, True, phase="narrow"))]  # fmt: skip
    assert rows[0].split()[:2] == ["10", "climb"] and "BROKE: queue_to_completion.p95 < 90s failed" in rows[0]
    assert rows[1].split()[:2] == ["10", "re-check"]
    assert rows[2].split()[:2] == ["9", "narrow"] and rows[2].endswith("held")
    # each column ends where its header does
    for name in ("p50", "p95", "p99", "failures", "runs/s"):
        end = header.index(name) + len(name)
        for row in rows:
            assert row[end - 1] != " " and row[end] == " ", (name, row)


def conclude(steps: list[Step], thresholds: list[str] = (), interrupted: bool = False):  # type: ignore[assignment,no-untyped-def]
    return conclude_capacity(
        Searched(tuple(steps), interrupted),
        model="closed",
        load_label="runs in flight",
        slos=SLOS,
        max_level=64,
        resolution=1,
        thresholds=parse_thresholds(thresholds),
    )


SEARCH = [
    step(8, True, runs_per_s=4),
    step(16, False),
    step(16, False, recheck=True),
    step(12, False, phase="narrow"),
    step(12, True, phase="narrow", recheck=True),
    step(14, True, phase="narrow", runs_per_s=7),
    step(15, False, phase="narrow"),
    step(15, False, phase="narrow", recheck=True),
]


def test_every_measurement_is_kept_and_the_chart_gets_one_per_level_in_order_of_load() -> None:
    done = conclude(SEARCH)
    saved = done.document["steps"]
    assert [(r["level"], r["phase"], r["recheck"], r["decides"]) for r in saved] == [
        (8, "climb", False, True),
        (16, "climb", False, False),
        (16, "climb", True, True),
        (12, "narrow", False, False),
        (12, "narrow", True, True),  # a noisy break: the re-check held, and decides
        (14, "narrow", False, True),
        (15, "narrow", False, False),
        (15, "narrow", True, True),
    ]
    assert [(r["level"], r["held"]) for r in done.rows] == [(8, True), (12, True), (14, True), (15, False), (16, False)]
    assert done.document["knee"] == {"last_held": 14, "first_broke": 15}
    assert done.document["sustained"] == {"level": 14, "runs_per_s": 7}
    assert done.lines[:2] == (
        "knee: held at 14, broke at 15 runs in flight",
        "sustains about 7 runs/s (closed: 14 runs in flight) with queue_to_completion.p95 < 90s and failure_rate < 5%",
    )
    assert done.ending.code is ExitCode.OK


def test_thresholds_are_checked_on_the_sustained_step() -> None:
    passed = conclude(SEARCH, ["achieved_runs_per_s >= 5/s"])
    assert [v.passed for v in passed.verdicts] == [True] and passed.ending.code is ExitCode.OK
    failed = conclude(SEARCH, ["achieved_runs_per_s >= 10/s"])
    assert failed.ending.code is ExitCode.THRESHOLDS
    assert failed.ending.sentence == "1 of 1 thresholds failed on the sustained step"
    assert "FAIL     achieved_runs_per_s >= 10/s" in failed.lines[-1]
    assert failed.document["thresholds"][0]["passed"] is False


def test_with_no_step_held_a_threshold_has_no_data_and_fails() -> None:
    done = conclude([step(2, False), step(2, False, recheck=True), step(1, False, phase="narrow"),
                     step(1, False, phase="narrow", recheck=True)], ["achieved_runs_per_s >= 1/s"])  # fmt: skip
    assert done.sustained is None
    assert [v.status for v in done.verdicts] == [Status.MISSING]
    assert "no step held the SLO" in done.verdicts[0].detail
    assert done.ending.code is ExitCode.THRESHOLDS


def test_an_interrupted_search_ends_130_even_with_a_failed_threshold() -> None:
    done = conclude(SEARCH[:1], ["achieved_runs_per_s >= 10/s"], interrupted=True)
    assert done.ending.code is ExitCode.INTERRUPTED
    assert done.lines[0] == "knee so far (interrupted): held up to 8 runs in flight; no step broke the SLO yet"


def test_a_results_free_step_still_concludes() -> None:
    # steps measured without their results document (an older caller): no gate, the sentence all the same
    bare = Step(4, 1.0, 2.0, 3.0, 0.0, 2.0, (Verdict(SLOS[0], Status.PASSED, 2.0, "was 2s"),))
    done = conclude([bare])
    assert done.lines[1].startswith("sustains at least about 2 runs/s (closed: 4 runs in flight)")
    assert parse_threshold("failure_rate < 5%").text in done.document["slos"]
