"""Verdicts per scenario: a corpus entry's ``expected_outcome`` checked against every run of it (the run's end and
its grade's ``call_outcome``), a verdict per scenario, shown in the results, the summary, HTML and JUnit, and
gated on by thresholds. Pure, but for the CLI checks (in process, on virtual time)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
import pytest
from support.cli import stressor_here as stressor
from support.junit_schema import problems

from stressor.document import RunEntry, ScenarioVerdict, ScenarioVerdicts, load_results
from stressor.verdicts import judge, run_verdict, summary

BAD_CORPUS = (
    '{"name": "hours", "scenario_prompt": "Ask the hours", "expected_outcome": "success"}\n'
    '{"name": "refund", "scenario_prompt": "Ask for a refund", "expected_outcome": "The agent issues a refund."}\n'
)
PROFILE = '[scenarios]\ncorpus = "c.jsonl"\n[[stages]]\nduration = "1s"\nrate = "2/s"\n'


@pytest.mark.parametrize("command", ["run", "plan"])
def test_an_expected_outcome_that_is_not_a_known_value_is_one_sentence_and_exit_2(tmp_path: Path, command: str) -> None:
    (tmp_path / "c.jsonl").write_text(BAD_CORPUS)
    (tmp_path / "p.toml").write_text(PROFILE)
    outputs = ["--out", str(tmp_path / "r.json")] if command == "run" else []
    done = stressor(command, str(tmp_path / "p.toml"), *outputs)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"stressor: {tmp_path / 'p.toml'}: scenarios.corpus: {tmp_path / 'c.jsonl'}: line 2.expected_outcome: must "
        "be one of 'success', 'failure', 'no_conversation', 'completed', 'failed', got 'The agent issues a "
        "refund.' (free text describing the goal goes in 'goal')"
    ]
    assert not (tmp_path / "r.json").exists()


CORPUS = (
    '{"name": "hours", "scenario_prompt": "Ask the hours", "expected_outcome": "success", "goal": "Gives hours"}\n'
    '{"name": "any", "scenario_prompt": "Say hello", "expected_outcome": "completed"}\n'
    '{"name": "broken", "scenario_prompt": "Hang up", "expected_outcome": "failed"}\n'
    '{"name": "refusal", "scenario_prompt": "Ask for medical advice", "expected_outcome": "failure"}\n'
    '{"name": "free", "scenario_prompt": "Chat"}\n'
)
GRADED = """
name = "graded"
grace = "5s"
[target]
poll_interval = "20ms"
[batch]
runs = 5
stagger = "5ms"
[scenarios]
corpus = "c.jsonl"
[grades]
wait = "1s"
[simulator]
grade_score = "fixed(0.9)"
[[stages]]
duration = "2s"
rate = "2/s"
"""


def _graded_run(tmp_path: Path, *args: str) -> tuple[int, str, dict]:
    (tmp_path / "c.jsonl").write_text(CORPUS)
    (tmp_path / "p.toml").write_text(GRADED)
    out = tmp_path / "r.json"
    done = stressor("run", str(tmp_path / "p.toml"), "--out", str(out), *args)
    assert done.returncode in (0, 5), done.stderr
    return done.returncode, done.stdout, orjson.loads(out.read_bytes())


def test_each_completed_runs_record_carries_its_grades_call_outcome(tmp_path: Path) -> None:
    code, _, results = _graded_run(tmp_path, "--webhooks", "--sim-failure-rate", "0.2")
    assert code == 0
    completed = [r for r in results["run_records"] if r["outcome"] == "completed"]
    assert completed and all(r["grade"] == 0.9 and r["call_outcome"] == "success" for r in completed)


def test_the_results_hold_a_verdict_per_scenario_and_their_summary(tmp_path: Path) -> None:
    code, _, results = _graded_run(tmp_path, "--webhooks")
    assert code == 0  # a verdict alone does not gate: a threshold does
    scenarios = results["scenarios"]
    assert {name: piece.get("verdict", {}).get("status") for name, piece in scenarios.items()} == {
        "hours": "passed",
        "any": "passed",
        "broken": "failed",  # its runs completed
        "refusal": "failed",  # its calls were graded a success
        "free": None,  # it states no expected outcome
    }
    assert scenarios["hours"]["verdict"] == {
        "status": "passed",
        "expected": "success",
        "matched": 4,
        "mismatched": 0,
        "undecided": 0,
        "observed": {"completed/success": 4},
    }
    assert scenarios["hours"]["goal"] == "Gives hours"
    assert scenarios["refusal"]["verdict"]["observed"] == {"completed/success": 4}
    assert results["scenario_verdicts"] == {"passed": 2, "failed": 2, "undecided": 0}
    typed = load_results(results)  # the typed document holds them, and writes them back as they were
    assert typed.scenarios["broken"].verdict == ScenarioVerdict(
        status="failed", expected="failed", matched=0, mismatched=4, undecided=0, observed={"completed/success": 4}
    )
    assert typed.to_json() == results


def test_without_grades_the_values_that_read_the_grade_are_undecided(tmp_path: Path) -> None:
    _, _, results = _graded_run(tmp_path)
    statuses = {name: piece.get("verdict", {}).get("status") for name, piece in results["scenarios"].items()}
    assert statuses == {"hours": "undecided", "any": "passed", "broken": "failed", "refusal": "undecided", "free": None}
    assert results["scenarios"]["hours"]["verdict"]["observed"] == {"completed/ungraded": 4}
    assert results["scenario_verdicts"] == {"passed": 1, "failed": 1, "undecided": 2}


# --------------------------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("expected", "outcome", "call_outcome", "verdict"),
    [
        ("success", "completed", "success", "matched"),
        ("success", "completed", "failure", "mismatched"),
        ("success", "completed", "no_conversation", "mismatched"),
        ("success", "failed", None, "mismatched"),  # success is said of a call that completed
        ("success", "failed", "no_conversation", "mismatched"),
        ("success", "completed", None, "undecided"),  # its grade never came
        ("success", "completed", "unknown", "undecided"),  # the grader could not tell
        ("success", "completed", "partial", "undecided"),  # not a value the docs name: stressor cannot tell
        ("success", "open", None, "undecided"),
        ("success", "errored", None, "undecided"),
        ("success", "rejected", None, "undecided"),
        ("success", "unknown", None, "undecided"),
        ("failure", "completed", "failure", "matched"),  # the agent is expected to fail or refuse
        ("failure", "completed", "success", "mismatched"),
        ("no_conversation", "completed", "no_conversation", "matched"),
        ("no_conversation", "failed", "no_conversation", "mismatched"),
        ("completed", "completed", None, "matched"),  # whatever the grade
        ("completed", "completed", "failure", "matched"),
        ("completed", "failed", None, "mismatched"),
        ("completed", "open", None, "undecided"),
        ("failed", "failed", None, "matched"),
        ("failed", "completed", "success", "mismatched"),
        ("failed", "errored", None, "undecided"),
    ],
)
def test_a_run_matches_mismatches_or_is_undecided(
    expected: str, outcome: str, call_outcome: str | None, verdict: str
) -> None:
    assert run_verdict(expected, outcome, call_outcome) == verdict


def entry(scenario: str, outcome: str, call_outcome: str | None = None, grade: float | None = None) -> RunEntry:
    return RunEntry(scenario=scenario, outcome=outcome, call_outcome=call_outcome, grade=grade)


def test_a_scenario_passes_on_a_match_and_no_mismatch_fails_on_any_mismatch_else_is_undecided() -> None:
    records = [
        entry("pass", "completed", "success", 0.9),
        entry("pass", "open"),  # undecided runs do not stop a pass
        entry("pass", "completed"),
        entry("fail", "completed", "success", 0.9),
        entry("fail", "completed", "failure", 0.3),  # one mismatch fails it, whatever the matches
        entry("wait", "completed"),
        entry("wait", "errored"),
        entry("free", "failed"),  # states no expected outcome: no verdict
    ]
    expected = {"pass": "success", "fail": "success", "wait": "success", "never": "completed"}
    verdicts = judge(records, expected)
    assert {name: v.status for name, v in verdicts.items()} == {
        "pass": "passed",
        "fail": "failed",
        "wait": "undecided",
        "never": "undecided",  # no run was dealt to it
    }
    assert (verdicts["pass"].matched, verdicts["pass"].mismatched, verdicts["pass"].undecided) == (1, 0, 2)
    assert dict(verdicts["pass"].observed or {}) == {"completed/success": 1, "completed/ungraded": 1, "open": 1}
    assert dict(verdicts["fail"].observed or {}) == {"completed/failure": 1, "completed/success": 1}
    assert verdicts["fail"].expected == "success"
    assert summary(verdicts.values()) == ScenarioVerdicts(passed=1, failed=1, undecided=2)


# ---------------------------------------------------------------------------------------------- shown


def test_the_summary_names_the_failing_scenarios_with_what_their_runs_came_to(tmp_path: Path) -> None:
    _, stdout, _ = _graded_run(tmp_path, "--webhooks")
    assert "scenarios: 2 of 4 passed their expected outcome, FAILED 2, undecided 0" in stdout
    flowing = " ".join(stdout.split())  # the summary wraps its lines at 80 columns
    assert "FAILED broken: expected outcome failed, 4 of 4 runs did not match (completed/success 4)" in flowing
    assert "FAILED refusal: expected outcome failure, 4 of 4 runs did not match (completed/success 4)" in flowing
    table = stdout[stdout.index("by scenario") :]
    assert "passed (expected success)" in table and "FAILED (expected failure)" in table
    _, stdout, _ = _graded_run(tmp_path)
    assert "scenarios: 1 of 4 passed their expected outcome, FAILED 1, undecided 2" in stdout
    waiting = "undecided (no run ended, or no grade came where the expected outcome needs one): hours, refusal"
    assert waiting in " ".join(stdout.split())


def test_a_threshold_gates_on_the_verdicts_and_junit_fails_the_failing_scenarios(tmp_path: Path) -> None:
    _graded_run(tmp_path, "--webhooks")
    results, junit = tmp_path / "r.json", tmp_path / "j.xml"
    done = stressor("report", str(results), "--junit", str(junit))
    assert done.returncode == 0  # a verdict alone does not gate
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    failures = {
        case.get("name"): failure.get("type")
        for case in suite.findall("testcase")
        if (failure := case.find("failure")) is not None
    }
    assert failures == {"broken": "expected-outcome", "refusal": "expected-outcome"}
    assert suite.get("failures") == "2"
    refusal = next(case for case in suite.findall("testcase") if case.get("name") == "refusal")
    failure = refusal.find("failure")
    assert failure is not None and failure.get("message") == (
        "scenario refusal: failed (expected outcome failure): 4 of 4 runs did not match, 0 matched, 0 undecided "
        "(completed/success 4)"
    )
    # The strict JUnit schema has properties per suite, not per case: the scenario's are named as a threshold is.
    assert problems(junit.read_text(encoding="utf-8")) == []
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert [properties[f"scenario[refusal].{key}"] for key in ("verdict", "expected_outcome", "mismatched")] == [
        "failed",
        "failure",
        "4",
    ]

    done = stressor("report", str(results), "--junit", str(junit), "-t", "scenario_verdicts.failed == 0")
    assert done.returncode == 5
    assert "FAIL scenario_verdicts.failed == 0 was 2, expected 0" in " ".join(done.stdout.split())
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "3"  # the threshold and the two scenarios
    done = stressor(
        "report", str(results), "-t", "scenario_verdicts.passed >= 2", "-t", "scenario_verdicts.undecided == 0"
    )
    assert done.returncode == 0, done.stdout


def test_a_threshold_on_verdicts_has_no_data_when_no_scenario_states_an_expected_outcome(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text('[[stages]]\nduration = "1s"\nrate = "2/s"\n')
    done = stressor(
        "run", str(tmp_path / "p.toml"), "--out", str(tmp_path / "r.json"), "-t", "scenario_verdicts.failed == 0"
    )
    assert done.returncode == 5
    assert "no data, no scenario states an expected_outcome" in done.stdout
    assert "scenarios:" not in done.stdout


def test_the_html_report_shows_each_verdict_with_its_goal(tmp_path: Path) -> None:
    _graded_run(tmp_path, "--webhooks")
    page = tmp_path / "r.html"
    assert stressor("report", str(tmp_path / "r.json"), "--html", str(page)).returncode == 0
    text = page.read_text()
    section = text[text.index('<section id="scenario-verdicts">') :]
    section = section[: section.index("</section>")]
    assert "Scenarios: 2 of 4 passed their expected outcome" in section
    rows = section.split("<tr>")[2:]
    assert len(rows) == 4 and "free" not in section  # a scenario without an expected outcome has no verdict
    hours = next(row for row in rows if "<td>hours</td>" in row)
    assert 'badge ok">passed' in hours and "<code>success</code>" in hours and "Gives hours" in hours
    broken = next(row for row in rows if "<td>broken</td>" in row)
    assert 'badge bad">FAILED' in broken and "completed/success 4" in broken


def test_a_scenario_no_run_was_dealt_to_is_undecided_so_a_gate_on_undecided_catches_it(tmp_path: Path) -> None:
    (tmp_path / "c.jsonl").write_text(CORPUS)
    short = GRADED.replace('duration = "2s"\nrate = "2/s"', 'duration = "1s"\nrate = "1/s"')
    short = short.replace("runs = 5", "runs = 2")
    (tmp_path / "p.toml").write_text(short)
    out = tmp_path / "r.json"
    done = stressor("run", str(tmp_path / "p.toml"), "--out", str(out), "-t", "scenario_verdicts.undecided == 0")
    assert done.returncode == 5
    results = orjson.loads(out.read_bytes())
    assert list(results["scenarios"]) == ["any", "broken", "hours", "refusal"]  # "free" states no expectation
    broken = results["scenarios"]["broken"]  # a slice like any other's, all its figures empty
    assert set(broken) == set(results["scenarios"]["hours"]) - {"goal"}
    assert sum(broken["outcomes"].values()) == 0 and broken["queue_to_completion"]["count"] == 0
    assert broken["verdict"] == {
        "status": "undecided",
        "expected": "failed",
        "matched": 0,
        "mismatched": 0,
        "undecided": 0,
        "observed": {},
    }
    assert results["scenario_verdicts"] == {"passed": 1, "failed": 0, "undecided": 3}
    waiting = "undecided (no run ended, or no grade came where the expected outcome needs one): broken, hours, refusal"
    assert waiting in " ".join(done.stdout.split())  # wrapped at 80 columns
