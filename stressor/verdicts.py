"""Verdicts per scenario: each run checked against its corpus entry's ``expected_outcome``, then each scenario
passed, failed or undecided. Pure. The values and the rules are in docs/profiles.md (``[scenarios]``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum

from stressor.document import RunEntry, ScenarioVerdict, ScenarioVerdicts, readonly

# The grade's call_outcome values that decide a run (the API's fourth, "unknown", and anything else do not).
DECIDING_CALL_OUTCOMES = frozenset({"success", "failure", "no_conversation"})
ENDED = ("completed", "failed")


class RunVerdict(StrEnum):
    MATCHED = "matched"
    MISMATCHED = "mismatched"
    UNDECIDED = "undecided"  # the run did not end, or the value needs a grade that never came (or said unknown)


class Status(StrEnum):
    PASSED = "passed"  # a run matched and none mismatched
    FAILED = "failed"  # a run mismatched
    UNDECIDED = "undecided"  # no run decided


def run_verdict(expected: str, outcome: str | None, call_outcome: str | None) -> RunVerdict:
    """One run (its outcome, its grade's call_outcome) against the outcome its scenario expects."""
    if outcome not in ENDED:
        return RunVerdict.UNDECIDED
    if expected in ENDED:
        return RunVerdict.MATCHED if outcome == expected else RunVerdict.MISMATCHED
    if outcome == "failed":  # success, failure and no_conversation are said of calls that completed
        return RunVerdict.MISMATCHED
    if call_outcome not in DECIDING_CALL_OUTCOMES:
        return RunVerdict.UNDECIDED
    return RunVerdict.MATCHED if call_outcome == expected else RunVerdict.MISMATCHED


def observed(record: RunEntry) -> str:
    """What a run came to, as the verdict's ``observed`` counts it: ``completed/success``, ``completed/ungraded``,
    ``failed``, ``open``..."""
    if record.outcome != "completed":
        return record.outcome or "unknown"
    if record.call_outcome is not None:
        return f"completed/{record.call_outcome}"
    return "completed/ungraded" if record.grade is None else "completed/unknown"


def status_of(matched: int, mismatched: int) -> Status:
    if mismatched:
        return Status.FAILED
    return Status.PASSED if matched else Status.UNDECIDED


def judge(records: Iterable[RunEntry], expected: Mapping[str, str]) -> dict[str, ScenarioVerdict]:
    """The verdict of every scenario that states an expected outcome (those no run was dealt to are undecided)."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in expected}
    seen: dict[str, Counter[str]] = {name: Counter() for name in expected}
    for record in records:
        want = expected.get(record.scenario or "")
        if want is None:
            continue
        name = str(record.scenario)
        counts[name][run_verdict(want, record.outcome, record.call_outcome)] += 1
        seen[name][observed(record)] += 1
    verdicts = {}
    for name, want in expected.items():
        tally = counts[name]
        matched, mismatched = tally[RunVerdict.MATCHED], tally[RunVerdict.MISMATCHED]
        verdicts[name] = ScenarioVerdict(
            status=str(status_of(matched, mismatched)),
            expected=want,
            matched=matched,
            mismatched=mismatched,
            undecided=tally[RunVerdict.UNDECIDED],
            observed=readonly(dict(sorted(seen[name].items()))),
        )
    return verdicts


def summary(verdicts: Iterable[ScenarioVerdict]) -> ScenarioVerdicts:
    """How many scenarios passed, failed and were undecided."""
    tally = Counter(v.status for v in verdicts)
    return ScenarioVerdicts(passed=tally[Status.PASSED], failed=tally[Status.FAILED], undecided=tally[Status.UNDECIDED])
