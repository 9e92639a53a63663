"""JUnit XML: one case per threshold, per scenario and for the run, failures with their reasons; every file valid
against the strict schema Jenkins' xUnit plugin checks (tests/support/junit_schema.py)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from support.documents import results
from support.junit_schema import problems
from test_report_fixture import load_fixture

from stressor.document import load_results
from stressor.report.junit import junit_xml
from stressor.thresholds import evaluate, parse_thresholds


def _suite(xml: str) -> ET.Element:
    assert problems(xml) == []
    root = ET.fromstring(xml.encode("utf-8"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "stressor"
    return suites[0]


def _cases(suite: ET.Element) -> dict[str, ET.Element]:
    return {f"{c.get('classname')}/{c.get('name')}": c for c in suite.findall("testcase")}


def test_one_case_per_threshold_with_the_verdict_as_failure_message() -> None:
    doc = load_fixture()
    verdicts = evaluate(parse_thresholds(["failure_rate < 25%", "queue_to_completion.p99 < 50ms"]), results(doc))
    suite = _suite(junit_xml(results(doc), verdicts))
    cases = _cases(suite)
    passed = cases["stressor.thresholds/failure_rate < 25%"]
    assert passed.find("failure") is None
    assert passed.findtext("system-out") == "failure_rate < 25% passed: was 20%"
    failure = cases["stressor.thresholds/queue_to_completion.p99 < 50ms"].find("failure")
    assert failure is not None and failure.get("type") == "threshold"
    assert failure.get("message") == "queue_to_completion.p99 < 50ms failed: was 82.6ms, 65.2% over 50ms"


def test_a_threshold_with_no_data_fails_as_such() -> None:
    doc = load_fixture()
    suite = _suite(junit_xml(results(doc), evaluate(parse_thresholds(["variant[storm].failed == 0"]), results(doc))))
    failure = _cases(suite)["stressor.thresholds/variant[storm].failed == 0"].find("failure")
    assert failure is not None and failure.get("type") == "no-data"
    assert "no variant 'storm' in the results" in (failure.get("message") or "")


def test_scenarios_carry_their_failures_as_figures_and_fail_only_on_their_thresholds() -> None:
    doc = load_fixture()
    doc["scenarios"]["refund"]["outcomes"].update(failed=0, errored=0, rejected=0)
    doc["scenarios"]["refund"]["grades"]["below_threshold"] = 0
    doc["scenarios"]["hours"]["outcomes"].update(failed=0, errored=1, rejected=2)
    cases = _cases(_suite(junit_xml(results(doc))))
    assert cases["stressor.scenarios/refund"].find("failure") is None
    assert "completed 18, failed 0" in (cases["stressor.scenarios/refund"].findtext("system-out") or "")
    hours = cases["stressor.scenarios/hours"]
    assert hours.find("failure") is None  # no threshold on it: errored runs are figures, not a verdict
    assert hours.find("properties") is None  # the strict schema has properties per suite, not per case
    props = {p.get("name"): p.get("value") for p in _suite(junit_xml(results(doc))).iter("property")}
    figures = ("errored", "rejected", "below_grade_threshold")
    assert [props[f"scenario[hours].{key}"] for key in figures] == ["1", "2", "2"]
    assert "2 below the grade threshold 0.75 (quality failures)" in (hours.findtext("system-out") or "")
    scoped = parse_thresholds(["scenario[hours].errored == 0", "scenario[refund].failed == 0"])
    verdicts = evaluate(scoped, results(doc))
    cases = _cases(_suite(junit_xml(results(doc), verdicts)))
    failure = cases["stressor.scenarios/hours"].find("failure")
    assert failure is not None and failure.get("type") == "threshold"
    assert failure.get("message") == "scenario hours: scenario[hours].errored == 0 failed: was 1, expected 0"
    assert cases["stressor.scenarios/refund"].find("failure") is None


def test_a_star_threshold_fails_each_scenario_it_fails_on() -> None:
    doc = load_fixture()
    verdicts = evaluate(parse_thresholds(["scenario[*].failure_rate < 1%"]), results(doc))
    failed = {v.threshold.path.scope_name for v in verdicts if not v.passed}
    assert failed  # the fixture has failed runs in its scenarios
    cases = _cases(_suite(junit_xml(results(doc), verdicts)))
    for name in doc["scenarios"]:
        assert (cases[f"stressor.scenarios/{name}"].find("failure") is not None) == (name in failed)


def test_suite_counts_and_properties() -> None:
    doc = load_fixture()
    verdicts = evaluate(parse_thresholds(["errored == 0", "failed == 0"]), results(doc))
    suite = _suite(junit_xml(results(doc), verdicts))
    # 2 thresholds + 2 scenarios + the run; failed: only the threshold "failed == 0".
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "1", "0")
    assert suite.get("timestamp", "").startswith("20")
    suite_properties = suite.find("properties")
    assert suite_properties is not None
    props = {p.get("name"): p.get("value") for p in suite_properties}
    assert props["profile"] == "tiny"


def test_failures_are_exactly_the_failed_thresholds() -> None:
    doc = load_fixture()
    doc["interrupted"] = True
    for texts in ([], ["failure_rate < 50%"], ["failure_rate < 50%", "queue_to_completion.p99 < 1ms"]):
        verdicts = evaluate(parse_thresholds(texts), results(doc))
        suite = _suite(junit_xml(results(doc), verdicts))
        assert suite.get("failures") == str(sum(not v.passed for v in verdicts))
        assert len(suite.findall(".//failure")) == sum(not v.passed for v in verdicts)


def test_the_run_case_is_skipped_with_the_reason_when_the_run_did_not_cover_its_plan() -> None:
    doc = load_fixture()
    run = _cases(_suite(junit_xml(results(doc))))["stressor.run/run"]
    assert run.find("failure") is None and run.find("skipped") is None
    doc["interrupted"] = True
    suite = _suite(junit_xml(results(doc)))
    skipped = _cases(suite)["stressor.run/run"].find("skipped")
    assert skipped is not None and skipped.get("message", "").startswith("the run was interrupted")
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "1")
    doc["interrupted"] = False
    doc["limits"]["breaker"] = "more than half of 40 requests failed over 30s"
    skipped = _cases(_suite(junit_xml(results(doc))))["stressor.run/run"].find("skipped")
    assert skipped is not None and "the breaker stopped the run" in skipped.get("message", "")


def test_strings_from_outside_stay_valid_xml() -> None:
    doc = load_fixture()
    doc["scenarios"]['<refund & "co"> \x01\x1b'] = doc["scenarios"].pop("refund")
    suite = _suite(junit_xml(results(doc)))  # parsing is the check: control characters would break it
    names = [c.get("name") for c in suite.findall("testcase")]
    assert '<refund & "co"> \ufffd\ufffd' in names


def _verdict(doc: dict, name: str, status: str) -> None:
    doc["scenarios"][name]["verdict"] = {
        "status": status,
        "expected": "success",
        "matched": 3,
        "mismatched": 1 if status == "failed" else 0,
        "undecided": 1 if status == "undecided" else 0,
        "observed": {"completed/success": 3},
    }


@pytest.mark.parametrize(
    "case",
    ["plain", "verdicts", "interrupted", "breaker", "stopped", "no scenarios", "empty", "odd names"],
)
def test_every_report_is_valid_against_the_strict_schema(case: str) -> None:
    doc = load_fixture()
    thresholds = ["failure_rate < 1%", "scenario[*].failed == 0", "variant[storm].failed == 0", "errored == 0"]
    if case == "verdicts":
        _verdict(doc, "refund", "failed")
        _verdict(doc, "hours", "undecided")
        doc["scenario_verdicts"] = {"passed": 0, "failed": 1, "undecided": 1}
    elif case == "interrupted":
        doc["interrupted"] = True
    elif case == "breaker":
        doc["limits"]["breaker"] = "more than half of 40 requests failed over 30s"
    elif case == "stopped":
        doc["stop_reason"] = "the budget of 100 cents is spent"
    elif case == "no scenarios":
        doc.pop("scenarios")
    elif case == "odd names":
        doc["scenarios"]['<a & "b">\x07'] = doc["scenarios"].pop("refund")
    document = load_results({}) if case == "empty" else results(doc)  # capacity with no step held writes this
    xml = junit_xml(document, evaluate(parse_thresholds(thresholds), document))
    assert problems(xml) == []
    assert ET.fromstring(xml.encode("utf-8")).find("testsuite/testcase/properties") is None


def test_the_schema_check_refuses_properties_in_a_case() -> None:
    """What the strict schema refused before: the check that guards the reports sees it."""
    xml = junit_xml(results(load_fixture()))
    root = ET.fromstring(xml.encode("utf-8"))
    case = root.find("testsuite/testcase")
    assert case is not None
    ET.SubElement(ET.SubElement(case, "properties"), "property", name="failed", value="2")
    case.set("status", "failed")
    found = problems(ET.tostring(root, encoding="unicode"))
    assert any("<properties> may not stand in <testcase>" in problem for problem in found), found
    assert any("the attribute status is not allowed" in problem for problem in found), found
