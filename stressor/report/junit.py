"""JUnit XML for CI: one test case per threshold, one per scenario, one for the run itself. Pure.

A case fails on a failed threshold or on a scenario that failed its expected outcome; the exit code follows the
thresholds alone (see docs/reports.md#junit-xml). The layout keeps to the strict schema Jenkins' xUnit plugin
checks (``junit-10.xsd``): properties belong to the suite, never to a case, so each scenario's figures are suite
properties named as a threshold would name them (``scenario[refund].failed``) and lines of its ``system-out``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime

from stressor.document import Figures, Results, ScenarioVerdict, Slice
from stressor.thresholds import Status, Verdict
from stressor.units import format_duration

SUITE = "stressor"

# XML 1.0 refuses most control characters even escaped; ElementTree would write them and produce a file
# no consumer can parse. Scenario names and server messages come from outside, so they are cleaned.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: object) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def _case(suite: ET.Element, classname: str, name: str, time_s: float = 0.0) -> ET.Element:
    return ET.SubElement(suite, "testcase", classname=classname, name=_clean(name), time=f"{time_s:.3f}")


def _fail(case: ET.Element, message: str, kind: str, body: str | None = None) -> None:
    failure = ET.SubElement(case, "failure", message=_clean(message), type=kind)
    failure.text = _clean(body if body is not None else message)


def _output(case: ET.Element, text: str) -> None:
    ET.SubElement(case, "system-out").text = _clean(text)


def _q2c(figures: Figures) -> str:
    if not figures.count:
        return "queue-to-completion: no run ended"
    cells = []
    for key in ("p50", "p90", "p99", "max"):
        value = getattr(figures, key)
        cells.append(f"{key} {format_duration(value) if value is not None else '-'}")
    return f"queue-to-completion ({figures.count} runs): " + ", ".join(cells)


def _scenario_figures(piece: Slice) -> list[tuple[str, object]]:
    """A scenario's figures, as suite properties (``scenario[NAME].KEY``) and its case's output."""
    outcomes, verdict = piece.outcomes, piece.verdict
    counts = [(key, getattr(outcomes, key) or 0) for key in ("completed", "failed", "errored", "rejected", "open")]
    judged: list[tuple[str, object]] = []
    if verdict is not None:
        judged = [
            ("verdict", verdict.status),
            ("expected_outcome", verdict.expected),
            ("matched", verdict.matched or 0),
            ("mismatched", verdict.mismatched or 0),
            ("undecided", verdict.undecided or 0),
        ]
    return [*counts, ("below_grade_threshold", piece.grades.below_threshold or 0), *judged]


def _scenario_case(
    suite: ET.Element, name: str, piece: Slice, threshold: float | None, failed: Sequence[Verdict]
) -> bool:
    """Add one scenario's case, failed by the thresholds on it that failed; return whether it failed."""
    outcomes, grades, verdict = piece.outcomes, piece.grades, piece.verdict
    counts = {key: getattr(outcomes, key) or 0 for key in ("completed", "failed", "errored", "rejected", "open")}
    below = grades.below_threshold or 0
    case = _case(suite, f"{SUITE}.scenarios", name)
    lines = [", ".join(f"{key} {value}" for key, value in counts.items()), _q2c(piece.queue_to_completion)]
    if verdict is not None:
        lines.append(_verdict_line(verdict))
    if piece.goal:
        lines.append(f"goal: {piece.goal}")
    if below:
        limit = f" {threshold:g}" if threshold is not None else ""
        lines.append(f"{below} below the grade threshold{limit} (quality failures)")
    if grades.count:
        mean = grades.mean
        lines.append(f"grades: {grades.count} graded, mean {mean:.3g}" if mean is not None else "grades: -")
    reasons = [v.sentence for v in failed]
    missed = verdict is not None and verdict.status == "failed"
    if missed:
        assert verdict is not None
        reasons.insert(0, _verdict_line(verdict))
    if reasons:
        kind = (
            "expected-outcome"
            if missed
            else "no-data"
            if all(v.status is Status.MISSING for v in failed)
            else "threshold"
        )
        _fail(case, f"scenario {name}: " + "; ".join(reasons), kind, "\n".join(lines))
    _output(case, "\n".join(lines))
    return bool(reasons)


def _verdict_line(verdict: ScenarioVerdict) -> str:
    """``failed (expected outcome success): 2 of 12 runs did not match, 10 matched, 0 undecided (...)``."""
    runs = (verdict.matched or 0) + (verdict.mismatched or 0) + (verdict.undecided or 0)
    seen = ", ".join(f"{what} {count}" for what, count in (verdict.observed or {}).items()) or "no run"
    return (
        f"{verdict.status} (expected outcome {verdict.expected}): {verdict.mismatched or 0} of {runs} runs did not "
        f"match, {verdict.matched or 0} matched, {verdict.undecided or 0} undecided ({seen})"
    )


def _run_case(suite: ET.Element, results: Results) -> bool:
    """The run itself: did it cover its plan? Return whether it is skipped (it did not)."""
    runs = results.runs
    case = _case(suite, f"{SUITE}.run", "run", results.elapsed_s or 0.0)
    problem = None
    if results.interrupted:
        problem = "the run was interrupted: its figures cover what was gathered until then"
    elif results.limits.breaker:
        problem = f"the breaker stopped the run: {results.limits.breaker}"
    elif results.stop_reason:
        problem = f"the run stopped early: {results.stop_reason}"
    figures = ", ".join(
        f"{key} {getattr(runs, key) or 0}" for key in ("planned", "submitted", "completed", "failed", "errored")
    )
    rate = results.failure_rate
    summary = (
        f"{figures}, rejected {runs.rejected or 0}, open {runs.open or 0}, "
        f"not started {sum((runs.not_started or {}).values())}\n"
        f"failure rate: {'-' if rate is None else f'{rate:.1%}'}\n"
        f"{_q2c(results.measures.get('queue_to_completion', Figures()))}"
    )
    if problem:
        ET.SubElement(case, "skipped", message=_clean(problem))
    _output(case, summary)
    return problem is not None


def junit_xml(results: Results, verdicts: Sequence[Verdict] = ()) -> str:
    """The JUnit XML report of a results document and the verdicts of its thresholds."""
    root = ET.Element("testsuites", name=SUITE)
    suite = ET.SubElement(root, "testsuite", name=SUITE)
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("profile", results.profile.name),
        ("profile_source", results.profile.source),
        ("schema", results.schema),
    ):
        if value is not None:
            ET.SubElement(properties, "property", name=key, value=_clean(value))
    for name, piece in results.scenarios.items():
        for key, value in _scenario_figures(piece):
            if value is not None:
                ET.SubElement(properties, "property", name=f"scenario[{_clean(name)}].{key}", value=_clean(value))
    failures = 0
    for v in verdicts:
        case = _case(suite, f"{SUITE}.thresholds", v.threshold.text)
        if not v.passed:
            failures += 1
            _fail(case, v.sentence, "no-data" if v.status is Status.MISSING else "threshold")
        _output(case, v.sentence)
    for name, piece in results.scenarios.items():
        on_it = [
            v
            for v in verdicts
            if not v.passed and v.threshold.path.scope == "scenario" and v.threshold.path.scope_name == name
        ]
        failures += _scenario_case(suite, name, piece, results.grades.threshold, on_it)
    skipped = int(_run_case(suite, results))
    tests = len(suite.findall("testcase"))
    started, elapsed = results.started_at, results.elapsed_s
    for element in (root, suite):
        element.set("tests", str(tests))
        element.set("failures", str(failures))
        element.set("errors", "0")
        element.set("time", f"{elapsed:.3f}" if elapsed is not None else "0")
    suite.set("skipped", str(skipped))
    if started is not None:
        suite.set("timestamp", datetime.fromtimestamp(started, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    if not len(properties):
        suite.remove(properties)  # an empty <properties/> is valid, but says nothing
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
