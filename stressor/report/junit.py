"""JUnit XML for CI: one test case per threshold, one per scenario, one for the run itself. Pure.

The layout is the common denominator JUnit consumers read (Jenkins, GitLab, GitHub test reporters, pytest's
own schema): ``<testsuites>`` holding one ``<testsuite name="stressor">``, each ``<testcase>`` with a
``classname`` and a ``name``, a ``<failure message=... type=...>`` when it failed, and ``<system-out>`` with the
figures behind it.

- ``stressor.thresholds``: one case per threshold; failed (or no data, which fails: see ``thresholds``) with
  the verdict's sentence as the message.
- ``stressor.scenarios``: one case per scenario; failed only when a threshold on that scenario
  (``scenario[<name>]...`` or ``scenario[*]...``) failed. Its failed, errored, rejected and open runs and its
  quality failures are figures, not verdicts: they are in the case's ``<properties>`` and ``<system-out>``.
- ``stressor.run``: skipped, with the reason, when the run was interrupted, stopped early or stopped by the
  breaker (its figures then cover less than the plan; ``stressor run`` exits non-zero for these on its own).

So the file fails exactly when the gate does: a JUnit failure is always a failed threshold, and a run or
``report`` that exits 0 writes a JUnit file with ``failures="0"``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

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


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _q2c(figures: object) -> str:
    if not isinstance(figures, Mapping) or not figures.get("count"):
        return "queue-to-completion: no run ended"
    cells = []
    for key in ("p50", "p90", "p99", "max"):
        value = figures.get(key)
        cells.append(f"{key} {format_duration(value) if isinstance(value, int | float) else '-'}")
    return f"queue-to-completion ({figures['count']} runs): " + ", ".join(cells)


def _scenario_case(
    suite: ET.Element, name: str, piece: Mapping[str, Any], threshold: object, failed: Sequence[Verdict]
) -> bool:
    """Add one scenario's case, failed by the thresholds on it that failed; return whether it failed."""
    outcomes = piece.get("outcomes") if isinstance(piece.get("outcomes"), Mapping) else {}
    grades = piece.get("grades") if isinstance(piece.get("grades"), Mapping) else {}
    counts = {key: _count(outcomes.get(key)) for key in ("completed", "failed", "errored", "rejected", "open")}
    below = _count(grades.get("below_threshold"))
    case = _case(suite, f"{SUITE}.scenarios", name)
    properties = ET.SubElement(case, "properties")
    for key, value in (*counts.items(), ("below_grade_threshold", below)):
        ET.SubElement(properties, "property", name=key, value=str(value))
    lines = [", ".join(f"{key} {value}" for key, value in counts.items()), _q2c(piece.get("queue_to_completion"))]
    if below:
        limit = f" {threshold:g}" if isinstance(threshold, int | float) else ""
        lines.append(f"{below} below the grade threshold{limit} (quality failures)")
    if grades.get("count"):
        mean = grades.get("mean")
        lines.append(
            f"grades: {grades['count']} graded, mean {mean:.3g}" if isinstance(mean, int | float) else "grades: -"
        )
    if failed:
        kind = "no-data" if all(v.status is Status.MISSING for v in failed) else "threshold"
        _fail(case, f"scenario {name}: " + "; ".join(v.sentence for v in failed), kind, "\n".join(lines))
    _output(case, "\n".join(lines))
    return bool(failed)


def _run_case(suite: ET.Element, document: Mapping[str, Any]) -> bool:
    """The run itself: did it cover its plan? Return whether it is skipped (it did not)."""
    runs = document.get("runs") if isinstance(document.get("runs"), Mapping) else {}
    limits = document.get("limits") if isinstance(document.get("limits"), Mapping) else {}
    elapsed = document.get("elapsed_s")
    case = _case(suite, f"{SUITE}.run", "run", elapsed if isinstance(elapsed, int | float) else 0.0)
    problem = None
    if document.get("interrupted"):
        problem = "the run was interrupted: its figures cover what was gathered until then"
    elif limits.get("breaker"):
        problem = f"the breaker stopped the run: {limits['breaker']}"
    elif document.get("stop_reason"):
        problem = f"the run stopped early: {document['stop_reason']}"
    not_started = runs.get("not_started") if isinstance(runs.get("not_started"), Mapping) else {}
    figures = ", ".join(
        f"{key} {_count(runs.get(key))}" for key in ("planned", "submitted", "completed", "failed", "errored")
    )
    rate = document.get("failure_rate")
    summary = (
        f"{figures}, rejected {_count(runs.get('rejected'))}, open {_count(runs.get('open'))}, "
        f"not started {sum(_count(v) for v in not_started.values())}\n"
        f"failure rate: {'-' if not isinstance(rate, int | float) else f'{rate:.1%}'}\n"
        f"{_q2c((document.get('measures') or {}).get('queue_to_completion'))}"
    )
    if problem:
        ET.SubElement(case, "skipped", message=_clean(problem))
    _output(case, summary)
    return problem is not None


def junit_xml(document: Mapping[str, Any], verdicts: Sequence[Verdict] = ()) -> str:
    """The JUnit XML report of a results document and the verdicts of its thresholds."""
    root = ET.Element("testsuites", name=SUITE)
    suite = ET.SubElement(root, "testsuite", name=SUITE)
    profile = document.get("profile") if isinstance(document.get("profile"), Mapping) else {}
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("profile", profile.get("name")),
        ("profile_source", profile.get("source")),
        ("schema", document.get("schema")),
    ):
        if value is not None:
            ET.SubElement(properties, "property", name=key, value=_clean(value))
    failures = 0
    for v in verdicts:
        case = _case(suite, f"{SUITE}.thresholds", v.threshold.text)
        if not v.passed:
            failures += 1
            _fail(case, v.sentence, "no-data" if v.status is Status.MISSING else "threshold")
        _output(case, v.sentence)
    scenarios = document.get("scenarios") if isinstance(document.get("scenarios"), Mapping) else {}
    grade_threshold = (document.get("grades") or {}).get("threshold")
    for name, piece in scenarios.items():
        if isinstance(piece, Mapping):
            on_it = [
                v
                for v in verdicts
                if not v.passed and v.threshold.path.scope == "scenario" and v.threshold.path.scope_name == str(name)
            ]
            failures += _scenario_case(suite, str(name), piece, grade_threshold, on_it)
    skipped = int(_run_case(suite, document))
    tests = len(suite.findall("testcase"))
    started = document.get("started_at")
    elapsed = document.get("elapsed_s")
    for element in (root, suite):
        element.set("tests", str(tests))
        element.set("failures", str(failures))
        element.set("errors", "0")
        element.set("time", f"{elapsed:.3f}" if isinstance(elapsed, int | float) else "0")
    suite.set("skipped", str(skipped))
    if isinstance(started, int | float):
        suite.set("timestamp", datetime.fromtimestamp(started, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
