"""The baseline diff per scenario (``stressor compare --scenarios``) on crafted results: runs paired, the noise
rule on grades and durations, verdicts, transcripts, the calls logs read back, and the text, Markdown and JSON."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.documents import results

from stressor.report.baseline import (
    Change,
    ScenarioComparison,
    compare_scenarios,
    pair_runs,
    runs_by_scenario,
    scenario_comparison_json,
    shift,
)
from stressor.report.baseline_render import render_scenarios_markdown, render_scenarios_text
from stressor.report.transcripts import Transcript, Turn


def record(
    scenario: str,
    k: int,
    grade: float | None = 0.85,
    *,
    outcome: str = "completed",
    call_outcome: str | None = "success",
    variant: str = "default",
    duration: float | None = 45.0,
    run_id: str | None = None,
) -> dict[str, Any]:
    """The k-th run (from 0) of a scenario: due k seconds in, one scenario a batch."""
    entry: dict[str, Any] = {
        "run_id": run_id or f"{scenario}-{variant}-{k}",
        "batch_seq": k,
        "index": 0,
        "variant": variant,
        "scenario": scenario,
        "outcome": outcome,
        "due_s": float(k),
        "call_id": f"call-{run_id or f'{scenario}-{variant}-{k}'}",
        "grade": grade,
    }
    if call_outcome is not None and grade is not None:
        entry["call_outcome"] = call_outcome
    if duration is not None:
        entry["call_duration_s"] = duration
    return entry


def document(
    records: Iterable[dict[str, Any]], verdicts: Mapping[str, str] | None = None, name: str = "corpus"
) -> dict[str, Any]:
    scenarios: dict[str, Any] = {}
    for scenario, status in (verdicts or {}).items():
        scenarios[scenario] = {"expected_outcome": "success", "verdict": {"status": status, "expected": "success"}}
    return {
        "schema": "stressor.results/1",
        "profile": {"name": name},
        "started_at": 1795976649.0,
        "elapsed_s": 10.0,
        "scenarios": scenarios,
        "run_records": list(records),
    }


class Said:
    """Transcripts by run id, as a calls log gives them."""

    def __init__(self, transcripts: Mapping[str, Transcript]) -> None:
        self._transcripts = transcripts

    def transcript(self, run_id: str | None) -> Transcript | None:
        return self._transcripts.get(str(run_id))


def grades(scenario: str, values: Iterable[float], **kwargs: Any) -> list[dict[str, Any]]:
    return [record(scenario, k, value, **kwargs) for k, value in enumerate(values)]


BASE_GRADES = [0.82, 0.85, 0.88, 0.8, 0.9, 0.84, 0.86, 0.83]


def diff(base: dict[str, Any], new: dict[str, Any], **kwargs: Any) -> ScenarioComparison:
    return compare_scenarios(results(base), results(new), **kwargs)


def scenario(comparison: ScenarioComparison, name: str) -> Any:
    (found,) = [s for s in comparison.scenarios if s.name == name]
    return found


# ---------------------------------------------------------------------------------------------------- pairing


def test_runs_are_paired_kth_with_kth_in_plan_order_within_a_variant() -> None:
    # the results list runs as they ended: out of plan order
    base = [record("s", k, variant=v) for v in ("spark", "bolt") for k in (2, 0, 1)]
    new = [record("s", k, variant=v, run_id=f"n{v}{k}") for v in ("bolt", "spark") for k in (1, 0)]
    grouped_base = runs_by_scenario(results(document(base)).run_records)["s"]
    grouped_new = runs_by_scenario(results(document(new)).run_records)["s"]
    pairs = pair_runs(grouped_base, grouped_new)
    shown = [(p.variant, p.k, p.base and p.base.run_id, p.new and p.new.run_id) for p in pairs]
    assert shown == [
        ("spark", 1, "s-spark-0", "nspark0"),
        ("spark", 2, "s-spark-1", "nspark1"),
        ("spark", 3, "s-spark-2", None),  # the base ran one more: unpaired, never paired with a bolt run
        ("bolt", 1, "s-bolt-0", "nbolt0"),
        ("bolt", 2, "s-bolt-1", "nbolt1"),
        ("bolt", 3, "s-bolt-2", None),
    ]
    found = scenario(diff(document(base), document(new)), "s")
    assert (found.unpaired_base, found.unpaired_new) == (2, 0)
    assert found.change is Change.CHANGED and "runs: 2 more in base, 0 more in new" in found.reasons


def test_each_pairs_outcome_grade_and_duration_change_is_told() -> None:
    base = grades("refund", BASE_GRADES)
    new = grades("refund", BASE_GRADES)
    new[3] = record("refund", 3, 0.3, call_outcome="failure", duration=20.0)
    new[5] = record("refund", 5, None, outcome="failed", duration=None)
    found = scenario(diff(document(base), document(new)), "refund")
    moved = {p.k: p for p in found.pairs if p.changed}
    assert sorted(moved) == [4, 6]
    assert (moved[4].base.observed, moved[4].new.observed) == ("completed/success", "completed/failure")
    assert moved[4].grade_delta == pytest.approx(0.3 - 0.8) and moved[4].duration_delta == -25.0
    assert moved[6].new.observed == "failed" and moved[6].grade_delta is None
    assert found.outcomes == (("completed/success", "completed/failure", 1), ("completed/success", "failed", 1))
    assert "2 runs changed outcome" in found.reasons


# ---------------------------------------------------------------------------------------------------- noise


def test_a_grade_drop_beyond_noise_and_past_the_allowed_drop_is_a_regression() -> None:
    base = document(grades("reschedule", BASE_GRADES))
    new = document(grades("reschedule", [g - 0.4 for g in BASE_GRADES]))
    comparison = diff(base, new)
    found = scenario(comparison, "reschedule")
    assert found.change is Change.REGRESSED and comparison.regressed
    assert found.grade.beyond_noise and found.grade.estimate == pytest.approx(-0.4)
    assert found.grade.difference.high < 0 and found.grade.difference.p_value < 0.05
    assert found.reasons[0] == "grade -0.40 (median), beyond noise"


def test_grades_that_move_within_noise_are_not_a_change() -> None:
    rng = random.Random(3)
    base = document(grades("hours", [rng.uniform(0.6, 1.0) for _ in range(12)]))
    new = document(grades("hours", [rng.uniform(0.6, 1.0) for _ in range(12)]))
    found = scenario(diff(base, new), "hours")
    assert found.grade.estimate != 0 and not found.grade.beyond_noise
    assert found.change is Change.SAME
    # the pairs' grades did change: told per run, not called a change of the scenario
    assert all(p.grade_delta for p in found.pairs)


def test_a_drop_beyond_noise_but_within_the_allowed_drop_is_a_change_not_a_regression() -> None:
    base = document(grades("hours", BASE_GRADES * 4))
    new = document(grades("hours", [g - 0.03 for g in BASE_GRADES * 4]))
    found = scenario(diff(base, new), "hours")
    assert found.grade.beyond_noise and found.change is Change.CHANGED
    assert found.reasons == ("grade -0.03 (median), beyond noise, within 0.05",)
    assert scenario(diff(base, new, grade_drop=0.02), "hours").change is Change.REGRESSED


def test_with_fewer_than_three_graded_runs_a_side_no_grade_change_is_called() -> None:
    base = document(grades("rare", [0.9, 0.9]))
    new = document(grades("rare", [0.1, 0.1]))
    found = scenario(diff(base, new), "rare")
    assert found.grade.difference is None and not found.grade.beyond_noise
    assert found.change is Change.CHANGED and "grade -0.80 (median), too few runs to tell" in found.reasons
    assert "?-0.80" in render_scenarios_text(diff(base, new))


def test_a_rise_beyond_noise_is_an_improvement() -> None:
    base = document(grades("hours", [g - 0.3 for g in BASE_GRADES]))
    new = document(grades("hours", BASE_GRADES))
    assert scenario(diff(base, new), "hours").change is Change.IMPROVED


def test_the_bootstrap_is_seeded_so_the_same_files_give_the_same_interval() -> None:
    rng = random.Random(1)
    a, b = [rng.random() for _ in range(40)], [rng.random() for _ in range(40)]
    assert shift(a, b).difference == shift(a, b).difference


def test_call_durations_longer_beyond_noise_are_a_change_never_a_regression() -> None:
    base = document([record("s", k, duration=40.0 + k % 3) for k in range(10)])
    new = document([record("s", k, duration=52.0 + k % 3) for k in range(10)])
    comparison = diff(base, new)
    found = scenario(comparison, "s")
    assert found.duration.beyond_noise and found.duration.estimate == 12.0
    assert found.change is Change.CHANGED and "call duration +12s (median), beyond noise" in found.reasons
    assert not comparison.regressed


# -------------------------------------------------------------------------------------------------- verdicts


def test_a_verdict_from_passed_to_failed_is_a_regression_whatever_the_grades() -> None:
    runs = grades("refund", BASE_GRADES)
    comparison = diff(document(runs, {"refund": "passed"}), document(runs, {"refund": "failed"}))
    found = scenario(comparison, "refund")
    assert found.change is Change.REGRESSED and found.reasons == ("verdict passed → failed",)
    assert found.verdict_change == "passed → failed"


@pytest.mark.parametrize(
    ("before", "after", "change"),
    [
        ("failed", "passed", Change.IMPROVED),
        ("passed", "undecided", Change.CHANGED),
        ("undecided", "failed", Change.CHANGED),  # not passed -> failed: told, not a regression
        ("passed", "passed", Change.SAME),
    ],
)
def test_other_verdict_changes(before: str, after: str, change: Change) -> None:
    runs = grades("refund", BASE_GRADES)
    comparison = diff(document(runs, {"refund": before}), document(runs, {"refund": after}))
    assert scenario(comparison, "refund").change is change and not comparison.regressed


def test_scenarios_on_one_side_only_are_listed_not_judged() -> None:
    base = document([*grades("kept", BASE_GRADES), *grades("dropped", BASE_GRADES)])
    new = document([*grades("kept", BASE_GRADES), *grades("added", BASE_GRADES)])
    comparison = diff(base, new)
    changes = {s.name: s.change for s in comparison.scenarios}
    assert changes == {"kept": Change.SAME, "dropped": Change.ONLY_BASE, "added": Change.ONLY_NEW}
    assert not comparison.regressed


# ---------------------------------------------------------------------------------------------- transcripts

HELLO = (Turn("agent", "Hi, how can I help?"), Turn("caller", "Is the store open Saturday?"))
OPEN = (*HELLO, Turn("agent", "Yes, from 9 to 5."), Turn("caller", "Thanks."))
REWORDED = (*HELLO, Turn("agent", "On Saturdays we open 9am to 5pm."), Turn("caller", "Thanks."))


def test_reworded_transcripts_score_below_one_and_the_pair_least_alike_is_diffed() -> None:
    runs = grades("hours", BASE_GRADES)
    base_said = Said({r["run_id"]: OPEN for r in runs})
    new_said = Said({r["run_id"]: (OPEN if i < 5 else REWORDED) for i, r in enumerate(runs)})
    comparison = diff(document(runs), document(runs), base_said=base_said, new_said=new_said)
    found = scenario(comparison, "hours")
    assert found.change is Change.CHANGED and found.reasons == ("said otherwise in 3 of 8 pairs",)
    said = found.transcripts
    assert (said.compared, said.differing, said.missing) == (8, 3, 0)
    assert said.lowest < 1 and said.lowest < said.mean < 1
    assert [p.similarity == 1 for p in found.pairs] == [True] * 5 + [False] * 3
    assert said.diff_runs == ("hours-default-5", "hours-default-5")
    assert {"- agent: Yes, from 9 to 5.", "+ agent: On Saturdays we open 9am to 5pm."} <= set(said.diff.lines)
    # grades unchanged, so nothing regressed
    assert found.grade.estimate == 0 and not comparison.regressed


def test_a_pair_with_a_transcript_on_one_side_only_is_counted_missing() -> None:
    runs = grades("hours", BASE_GRADES[:4])
    base_said = Said({r["run_id"]: OPEN for r in runs})
    new_said = Said({r["run_id"]: OPEN for r in runs[:3]})
    found = scenario(diff(document(runs), document(runs), base_said=base_said, new_said=new_said), "hours")
    assert (found.transcripts.compared, found.transcripts.missing) == (3, 1)
    assert found.change is Change.SAME


def test_without_transcripts_on_a_side_none_are_compared() -> None:
    runs = grades("hours", BASE_GRADES)
    found = scenario(diff(document(runs), document(runs), base_said=Said({})), "hours")
    assert found.transcripts is None and found.change is Change.SAME


# ------------------------------------------------------------------------------------------------ rendering


def _regressed_pair() -> tuple[dict[str, Any], dict[str, Any], Said, Said]:
    names = ("reschedule", "opening-hours", "order|status")
    base_runs = [r for name in names for r in grades(name, BASE_GRADES)]
    new_runs = [r for name in names if name != "reschedule" for r in grades(name, BASE_GRADES)]
    new_runs += grades("reschedule", [g - 0.4 for g in BASE_GRADES], call_outcome="failure")
    verdicts = {name: "passed" for name in names}
    said = {r["run_id"]: OPEN for r in base_runs}
    new_said = {r["run_id"]: (REWORDED if r["scenario"] != "order|status" else OPEN) for r in new_runs}
    return (
        document(base_runs, verdicts),
        document(new_runs, {**verdicts, "reschedule": "failed"}),
        Said(said),
        Said(new_said),
    )


def _rendered() -> ScenarioComparison:
    base, new, base_said, new_said = _regressed_pair()
    return diff(base, new, base_said=base_said, new_said=new_said)


def test_text_names_the_changed_scenarios_in_a_table_and_details_the_changes() -> None:
    text = render_scenarios_text(_rendered())
    lines = text.splitlines()
    assert lines[0] == "stressor compare --scenarios: 1 of 3 scenarios regressed"
    assert lines[-1] == "REGRESSED: 1 scenario (reschedule)"
    row = next(line for line in lines if line.startswith("  reschedule"))
    assert re.fullmatch(r"  reschedule\s+REGRESSED\s+passed → failed\s+-0\.40\s+0\s+0\.\d\d", row), row
    assert re.fullmatch(
        r"  opening-hours\s+changed\s+passed\s+0\s+0\s+0\.\d\d",
        next(line for line in lines if line.startswith("  opening-hours")),
    )
    assert re.fullmatch(
        r"  order\|status\s+same\s+passed\s+0\s+0\s+1\.00",
        next(line for line in lines if line.startswith("  order|status")),
    )
    # a section for each changed scenario, none for the same
    assert any(line.startswith("reschedule: REGRESSED (verdict passed → failed;") for line in lines)
    assert any(line.startswith("opening-hours: changed (said otherwise in 8 of 8 pairs)") for line in lines)
    assert not any(line.startswith("order|status:") for line in lines)
    assert "    - agent: Yes, from 9 to 5." in lines
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]


def test_markdown_has_a_table_of_scenarios_and_a_folded_section_per_changed_one() -> None:
    markdown = render_scenarios_markdown(_rendered())
    assert markdown.startswith("### stressor compare --scenarios: ❌ 1 of 3 scenarios regressed\n")
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    header, rows = table[0], table[1:4]
    assert header.startswith("| | scenario | verdict | grade: median Δ [95 % CI] | call duration")
    assert rows[0].startswith("| ❌ | reschedule | passed → failed | **-0.40** [")
    assert rows[1].startswith("| ✏️ | opening-hours | passed | 0 [")
    assert rows[2].startswith("|  | order\\|status | passed | 0 [") and rows[2].endswith("| 1.00 |")
    assert markdown.count("<details>") == markdown.count("</details>") == 2
    assert "<summary>❌ <b>reschedule</b>: regressed (verdict passed → failed;" in markdown
    assert "order|status</b>" not in markdown
    diff_block = markdown.split("```diff\n", 1)[1].split("\n```", 1)[0].splitlines()
    assert "- agent: Yes, from 9 to 5." in diff_block and "@@ caller: the same 2 turns @@" in diff_block
    assert "| default | 1 | reschedule-default-0 → reschedule-default-0 | completed/success → completed/failure" in (
        markdown
    )
    assert "Mann-Whitney p &lt; 0.05" in markdown  # the rule is said


def test_markdown_fences_a_transcript_that_holds_backticks() -> None:
    runs = grades("code", BASE_GRADES[:3])
    tricky = (Turn("agent", "Type ```rm -rf``` and </details> now"),)
    comparison = diff(
        document(runs),
        document(runs),
        base_said=Said({r["run_id"]: OPEN for r in runs}),
        new_said=Said({r["run_id"]: tricky for r in runs}),
    )
    markdown = render_scenarios_markdown(comparison)
    assert "\n````diff\n" in markdown and "+ agent: Type ```rm -rf``` and </details> now" in markdown
    assert markdown.count("</details>") == 2  # one in the code, one closing the section


def test_json_lists_every_scenario_and_pair() -> None:
    as_json = scenario_comparison_json(_rendered())
    assert json.loads(orjson.dumps(as_json)) == as_json
    assert as_json["schema"] == "stressor.scenario-comparison/1" and as_json["regressed"] is True
    by_name = {s["scenario"]: s for s in as_json["scenarios"]}
    assert by_name["reschedule"]["change"] == "regressed"
    assert by_name["reschedule"]["verdict"] == {"base": "passed", "new": "failed"}
    assert by_name["reschedule"]["grade"]["median_difference"]["estimate"] == pytest.approx(-0.4)
    assert by_name["reschedule"]["grade"]["beyond_noise"] is True
    assert len(by_name["reschedule"]["runs"]) == 8
    assert by_name["opening-hours"]["transcripts"]["differing"] == 8
    assert by_name["order|status"]["change"] == "same"
    assert as_json["rule"] == {"grade_drop": 0.05, "confidence": 0.95, "statistic": "median"}


# ------------------------------------------------------------------------------------------ the calls logs


def write_results(path: Path, doc: dict[str, Any], calls_log: str | None) -> Path:
    if calls_log is not None:
        doc = {**doc, "calls": {"log": calls_log, "fetched": len(doc["run_records"]), "transcripts": 1}}
    path.write_bytes(orjson.dumps(doc))
    return path


def calls_lines(runs: Iterable[dict[str, Any]], transcript: Transcript | None) -> bytes:
    lines = []
    for run in runs:
        turns = None
        if transcript is not None:
            turns = [{"role": {"agent": "assistant", "caller": "user"}[t.role], "content": t.text} for t in transcript]
        lines.append(orjson.dumps({"run_id": run["run_id"], "call_id": run["call_id"], "transcript": turns}))
    return b"\n".join(lines) + b"\n"
