"""The baseline diff per scenario (``stressor compare --scenarios``): each scenario's runs in two results paired
(the k-th run of a scenario in a variant on each side), and what changed: the verdict, the runs' outcomes, grades
and call durations (beyond noise or not), and what was said. Pure: transcripts come through ``Said``. The rules:
docs/reports.md (``stressor compare``)."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from stressor.document import Results, RunEntry
from stressor.report.compare import RunInfo, run_info
from stressor.report.transcripts import Transcript, TranscriptDiff, digest, similarity, transcript_diff
from stressor.stats import BOOTSTRAP_RESAMPLES, CONFIDENCE, MIN_RANKED, Difference, difference, quantile, rank_test
from stressor.tiers import DRAW_BUDGET, MAX_SAMPLE, MIN_RESAMPLES
from stressor.verdicts import observed

SCHEMA = "stressor.scenario-comparison/1"
DEFAULT_GRADE_DROP = 0.05  # as the figure comparison's default rule, grade.mean -0.05
SEED = 0
_MEMO = 4096  # transcript pairs whose similarity is remembered within a scenario (runs of a scenario repeat)


class Said(Protocol):
    """Where one side's transcripts come from (its calls log)."""

    def transcript(self, run_id: str | None) -> Transcript | None: ...


class Change(StrEnum):
    """What came of a scenario between the two results."""

    REGRESSED = "regressed"  # its verdict went passed -> failed, or its grade fell beyond noise
    IMPROVED = "improved"  # failed -> passed, or its grade rose beyond noise
    CHANGED = "changed"  # something else differs: outcomes of runs, durations, transcripts, run counts
    SAME = "same"
    ONLY_BASE = "only in base"
    ONLY_NEW = "only in new"


@dataclass(frozen=True, slots=True)
class RunSide:
    """One run of a pair, as the diff shows it."""

    run_id: str | None
    observed: str  # what it came to: completed/success, completed/failure, failed, errored... (verdicts.observed)
    grade: float | None
    call_duration_s: float | None


@dataclass(frozen=True, slots=True)
class RunPair:
    """The k-th run (from 1, in plan order) of a scenario in a variant on each side; a side without one is None."""

    variant: str
    k: int
    base: RunSide | None
    new: RunSide | None
    similarity: float | None = None  # None: the transcripts were not compared

    @property
    def outcome_changed(self) -> bool:
        return self.base is not None and self.new is not None and self.base.observed != self.new.observed

    @property
    def grade_delta(self) -> float | None:
        return _delta(self.base and self.base.grade, self.new and self.new.grade)

    @property
    def duration_delta(self) -> float | None:
        return _delta(self.base and self.base.call_duration_s, self.new and self.new.call_duration_s)

    @property
    def changed(self) -> bool:
        return (
            self.base is None
            or self.new is None
            or self.outcome_changed
            or bool(self.grade_delta)
            or bool(self.duration_delta)
            or (self.similarity is not None and self.similarity < 1)
        )


def _delta(base: float | None, new: float | None) -> float | None:
    return None if base is None or new is None else new - base


@dataclass(frozen=True, slots=True)
class Sample:
    """A measure's values in a scenario's runs on one side: how many, their mean and median."""

    count: int
    mean: float | None
    median: float | None


@dataclass(frozen=True, slots=True)
class Shift:
    """A measure of a scenario's runs on both sides, the difference of the medians (new - base) with its
    interval and rank test (None with fewer than 3 values a side), and whether it is beyond noise: the interval
    leaves out 0 and the rank test agrees (p < 0.05)."""

    base: Sample
    new: Sample
    difference: Difference | None

    @property
    def beyond_noise(self) -> bool:
        found = self.difference
        return (
            found is not None
            and found.significant
            and found.p_value is not None
            and found.p_value < 1 - found.confidence
        )

    @property
    def estimate(self) -> float | None:
        if self.difference is not None:
            return self.difference.estimate
        return _delta(self.base.median, self.new.median)


@dataclass(frozen=True, slots=True)
class Transcripts:
    """A scenario's transcripts compared pair by pair: pairs compared, those that differ, the mean and the
    lowest similarity, pairs missing a transcript on a side, and the diff of the pair least alike."""

    compared: int
    differing: int
    mean: float | None
    lowest: float | None
    missing: int
    diff: TranscriptDiff | None = None
    diff_runs: tuple[str | None, str | None] = (None, None)  # the base's and the new run shown in the diff


@dataclass(frozen=True, slots=True)
class ScenarioDiff:
    """One scenario in both results: what came of it (``change``) and why (``reasons``, a phrase each), its
    verdict on each side, its runs' outcome changes over the pairs (``(base, new, pairs)``), its grade and call
    duration, its transcripts (None: not compared), its pairs and the runs one side has more of."""

    name: str
    change: Change
    reasons: tuple[str, ...]
    expected: str | None
    base_verdict: str | None
    new_verdict: str | None
    outcomes: tuple[tuple[str, str, int], ...]
    grade: Shift
    duration: Shift
    transcripts: Transcripts | None
    pairs: tuple[RunPair, ...]
    unpaired_base: int
    unpaired_new: int

    @property
    def regressed(self) -> bool:
        return self.change is Change.REGRESSED

    @property
    def verdict_change(self) -> str:
        """``passed → failed``, ``passed``, or ``-`` without an expected outcome on either side."""
        base, new = self.base_verdict, self.new_verdict
        if base is None and new is None:
            return "-"
        return str(base or new) if base == new else f"{base or '-'} → {new or '-'}"


@dataclass(frozen=True, slots=True)
class SaidState:
    """What one side's transcripts amount to: the calls log used (None: none), and one sentence when its
    transcripts cannot be compared (``problem``) or some are missing (``caveat``)."""

    path: str | None
    problem: str | None = None
    caveat: str | None = None


@dataclass(frozen=True, slots=True)
class ScenarioComparison:
    """The whole baseline diff."""

    base: RunInfo
    new: RunInfo
    base_said: SaidState
    new_said: SaidState
    grade_drop: float
    scenarios: tuple[ScenarioDiff, ...]
    notes: tuple[str, ...]

    @property
    def regressions(self) -> tuple[ScenarioDiff, ...]:
        return tuple(s for s in self.scenarios if s.regressed)

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def count(self, change: Change) -> int:
        return sum(1 for s in self.scenarios if s.change is change)


# ------------------------------------------------------------------------------------------------- pairing


def plan_order(record: RunEntry) -> tuple[float, int, int]:
    """Where a run stands in the plan: its due time, then its batch and its place in it."""
    due = record.due_s if record.due_s is not None else math.inf
    return due, record.batch_seq or 0, record.index or 0


def runs_by_scenario(records: Iterable[RunEntry]) -> dict[str, dict[str, list[RunEntry]]]:
    """scenario -> variant -> its runs in plan order (the results list runs as they ended)."""
    grouped: dict[str, dict[str, list[RunEntry]]] = {}
    for record in records:
        scenario, variant = record.scenario or "?", record.variant or "default"
        grouped.setdefault(scenario, {}).setdefault(variant, []).append(record)
    for variants in grouped.values():
        for runs in variants.values():
            runs.sort(key=plan_order)
    return grouped


def _side(record: RunEntry | None) -> RunSide | None:
    if record is None:
        return None
    return RunSide(record.run_id, observed(record), record.grade, record.call_duration_s)


def pair_runs(base: Mapping[str, Sequence[RunEntry]], new: Mapping[str, Sequence[RunEntry]]) -> list[RunPair]:
    """A scenario's runs paired: the k-th run in a variant on one side with the k-th in that variant on the other
    (variants in the base's order, then the new's)."""
    pairs = []
    for variant in [*base, *(v for v in new if v not in base)]:
        left, right = base.get(variant, ()), new.get(variant, ())
        for k in range(max(len(left), len(right))):
            pairs.append(
                RunPair(
                    variant,
                    k + 1,
                    _side(left[k] if k < len(left) else None),
                    _side(right[k] if k < len(right) else None),
                )
            )
    return pairs


# -------------------------------------------------------------------------------------------------- judging


def _sample(values: Sequence[float]) -> Sample:
    if not values:
        return Sample(0, None, None)
    return Sample(len(values), sum(values) / len(values), quantile(sorted(values), 0.5))


def shift(base: Sequence[float], new: Sequence[float]) -> Shift:
    """The two sides' values of a measure and the difference of their medians, with a bootstrap interval (at
    most ``MAX_SAMPLE`` values a side, seeded) and the rank test of every value."""
    found = None
    if len(base) >= MIN_RANKED and len(new) >= MIN_RANKED:
        a = base if len(base) <= MAX_SAMPLE else random.Random(SEED).sample(list(base), MAX_SAMPLE)
        b = new if len(new) <= MAX_SAMPLE else random.Random(SEED).sample(list(new), MAX_SAMPLE)
        resamples = max(MIN_RESAMPLES, min(BOOTSTRAP_RESAMPLES, DRAW_BUDGET // (len(a) + len(b))))
        drawn = difference(a, b, resamples=resamples, seed=SEED)
        assert drawn is not None  # both sides have values
        estimate = quantile(sorted(new), 0.5) - quantile(sorted(base), 0.5)
        p_value = drawn.p_value if (a is base and b is new) else rank_test(base, new)
        found = Difference(
            percentile=50.0,
            estimate=estimate,
            low=drawn.low,
            high=drawn.high,
            confidence=CONFIDENCE,
            p_value=p_value,
            a_count=len(base),
            b_count=len(new),
        )
    return Shift(_sample(base), _sample(new), found)


def _values(runs: Iterable[Sequence[RunEntry]], value: Callable[[RunEntry], float | None]) -> list[float]:
    return [float(v) for variant in runs for record in variant if (v := value(record)) is not None]


class _Alike:
    """Compares a scenario's transcript pairs, remembering the similarity of pairs seen (a scenario's runs
    often say the same), and keeps the pair least alike for its diff."""

    def __init__(self, base: Said | None, new: Said | None) -> None:
        self._base, self._new = base, new
        self._memo: dict[tuple[bytes, bytes], float] = {}
        self.ratios: list[float] = []
        self.missing = 0
        self._worst: tuple[float, Transcript, Transcript, str | None, str | None] | None = None

    def compare(self, pair: RunPair) -> float | None:
        if self._base is None or self._new is None or pair.base is None or pair.new is None:
            return None
        left, right = self._base.transcript(pair.base.run_id), self._new.transcript(pair.new.run_id)
        if left is None or right is None:
            if left is not None or right is not None:
                self.missing += 1
            return None
        key = (digest(left), digest(right))
        ratio = self._memo.get(key)
        if ratio is None:
            ratio = similarity(left, right)
            if len(self._memo) < _MEMO:
                self._memo[key] = ratio
        self.ratios.append(ratio)
        if ratio < 1 and (self._worst is None or ratio < self._worst[0]):
            self._worst = (ratio, left, right, pair.base.run_id, pair.new.run_id)
        return ratio

    def result(self) -> Transcripts:
        ratios = self.ratios
        diff, runs = None, (None, None)
        if self._worst is not None:
            _, left, right, base_run, new_run = self._worst
            diff, runs = transcript_diff(left, right), (base_run, new_run)
        return Transcripts(
            compared=len(ratios),
            differing=sum(1 for r in ratios if r < 1),
            mean=sum(ratios) / len(ratios) if ratios else None,
            lowest=min(ratios) if ratios else None,
            missing=self.missing,
            diff=diff,
            diff_runs=runs,
        )


def _score(value: float) -> str:
    return f"{value:+.2f}"


def _seconds(value: float) -> str:
    return f"{value:+.0f}s" if value == round(value) else f"{value:+.1f}s"


def _judge(
    verdicts: tuple[str | None, str | None],
    outcomes: Sequence[tuple[str, str, int]],
    grade: Shift,
    duration: Shift,
    transcripts: Transcripts | None,
    unpaired: tuple[int, int],
    grade_drop: float,
) -> tuple[Change, tuple[str, ...]]:
    """What came of a scenario, and the reasons, the weightiest first."""
    worse: list[str] = []
    better: list[str] = []
    other: list[str] = []
    base, new = verdicts
    if base != new and (base is not None or new is not None):
        phrase = f"verdict {base or '-'} → {new or '-'}"
        went = {("passed", "failed"): worse, ("failed", "passed"): better}.get((base, new), other)
        went.append(phrase)
    estimate = grade.estimate
    if grade.beyond_noise and estimate is not None:
        phrase = f"grade {_score(estimate)} (median), beyond noise"
        if estimate < -grade_drop:
            worse.append(phrase)
        elif estimate > grade_drop:
            better.append(phrase)
        else:
            other.append(f"{phrase}, within {grade_drop:g}")
    elif grade.difference is None and estimate:
        other.append(f"grade {_score(estimate)} (median), too few runs to tell")
    changed_runs = sum(count for _, _, count in outcomes)
    if changed_runs:
        other.append(f"{changed_runs} run{'s' if changed_runs != 1 else ''} changed outcome")
    if duration.beyond_noise and duration.estimate:
        other.append(f"call duration {_seconds(duration.estimate)} (median), beyond noise")
    if transcripts is not None and transcripts.differing:
        other.append(f"said otherwise in {transcripts.differing} of {transcripts.compared} pairs")
    if any(unpaired):
        other.append(f"runs: {unpaired[0]} more in base, {unpaired[1]} more in new")
    if worse:
        return Change.REGRESSED, (*worse, *better, *other)
    if better:
        return Change.IMPROVED, (*better, *other)
    return (Change.CHANGED, tuple(other)) if other else (Change.SAME, ())


def _verdict(results: Results, name: str) -> tuple[str | None, str | None]:
    piece = results.scenarios.get(name)
    if piece is None:
        return None, None
    status = piece.verdict.status if piece.verdict is not None else None
    return status, piece.expected_outcome


def _scenario(
    name: str,
    base_doc: Results,
    new_doc: Results,
    base_runs: Mapping[str, Sequence[RunEntry]] | None,
    new_runs: Mapping[str, Sequence[RunEntry]] | None,
    said: tuple[Said | None, Said | None],
    grade_drop: float,
) -> ScenarioDiff:
    base_verdict, base_expected = _verdict(base_doc, name)
    new_verdict, new_expected = _verdict(new_doc, name)
    left, right = base_runs or {}, new_runs or {}
    alike = _Alike(*said)
    pairs = [RunPair(p.variant, p.k, p.base, p.new, alike.compare(p)) for p in pair_runs(left, right)]
    both = [p for p in pairs if p.base is not None and p.new is not None]
    moved = Counter((p.base.observed, p.new.observed) for p in both if p.outcome_changed)  # type: ignore[union-attr]
    outcomes = tuple((b, n, c) for (b, n), c in sorted(moved.items(), key=lambda item: (-item[1], item[0])))
    grade = shift(_values(left.values(), lambda r: r.grade), _values(right.values(), lambda r: r.grade))
    duration = shift(
        _values(left.values(), lambda r: r.call_duration_s), _values(right.values(), lambda r: r.call_duration_s)
    )
    transcripts = alike.result() if all(s is not None for s in said) and base_runs and new_runs else None
    unpaired = (sum(1 for p in pairs if p.new is None), sum(1 for p in pairs if p.base is None))
    if base_runs is None or new_runs is None:
        change = Change.ONLY_NEW if base_runs is None else Change.ONLY_BASE
        reasons: tuple[str, ...] = ()
    else:
        change, reasons = _judge(
            (base_verdict, new_verdict), outcomes, grade, duration, transcripts, unpaired, grade_drop
        )
    return ScenarioDiff(
        name=name,
        change=change,
        reasons=reasons,
        expected=new_expected or base_expected,
        base_verdict=base_verdict,
        new_verdict=new_verdict,
        outcomes=outcomes,
        grade=grade,
        duration=duration,
        transcripts=transcripts,
        pairs=tuple(pairs),
        unpaired_base=unpaired[0],
        unpaired_new=unpaired[1],
    )


def _scenario_names(results: Results, grouped: Mapping[str, Any]) -> list[str]:
    return list(dict.fromkeys([*results.scenarios, *grouped]))


def compare_scenarios(
    base_doc: Results,
    new_doc: Results,
    base_said: Said | None = None,
    new_said: Said | None = None,
    *,
    base_state: SaidState | None = None,
    new_state: SaidState | None = None,
    grade_drop: float = DEFAULT_GRADE_DROP,
) -> ScenarioComparison:
    """Each scenario of either results, compared. ``base_said`` / ``new_said``: the sides' transcripts (None: not
    compared); ``*_state``: what their calls logs came to, for the header."""
    base_runs, new_runs = runs_by_scenario(base_doc.run_records), runs_by_scenario(new_doc.run_records)
    base_names, new_names = _scenario_names(base_doc, base_runs), _scenario_names(new_doc, new_runs)
    said = (base_said, new_said)
    scenarios = [
        _scenario(
            name,
            base_doc,
            new_doc,
            base_runs.get(name, {}) if name in base_names else None,
            new_runs.get(name, {}) if name in new_names else None,
            said,
            grade_drop,
        )
        for name in dict.fromkeys([*base_names, *new_names])
    ]
    return ScenarioComparison(
        base=run_info(base_doc),
        new=run_info(new_doc),
        base_said=base_state or SaidState(None),
        new_said=new_state or SaidState(None),
        grade_drop=grade_drop,
        scenarios=tuple(scenarios),
        notes=tuple(_notes(base_doc, new_doc)),
    )


def _notes(base_doc: Results, new_doc: Results) -> list[str]:
    """What makes the diff less fair than it looks."""
    notes = []
    base, new = run_info(base_doc), run_info(new_doc)
    if base.profile != new.profile:
        notes.append(f"the runs used different profiles ({base.profile!r} and {new.profile!r})")
    for which, doc in (("base", base_doc), ("new", new_doc)):
        if doc.interrupted:
            notes.append(f"the {which} run was interrupted: it has fewer runs to pair")
        elif doc.stop_reason:
            notes.append(f"the {which} run stopped early: {doc.stop_reason}")
        if not any(r.grade is not None for r in doc.run_records):
            notes.append(f"the {which} run has no grades (fetch them: [grades] fetch = true, or --webhooks)")
    base_variants = {r.variant for r in base_doc.run_records}
    new_variants = {r.variant for r in new_doc.run_records}
    if base_variants != new_variants:
        notes.append("the runs have different variants: only runs of the same variant are paired")
    return notes


# ------------------------------------------------------------------------------------------------------ JSON


def _difference_json(found: Difference | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "estimate": found.estimate,
        "low": found.low,
        "high": found.high,
        "confidence": found.confidence,
        "p_value": found.p_value,
    }


def _shift_json(measure: Shift) -> dict[str, Any]:
    def side(sample: Sample) -> dict[str, Any]:
        return {"count": sample.count, "mean": sample.mean, "median": sample.median}

    return {
        "base": side(measure.base),
        "new": side(measure.new),
        "median_difference": _difference_json(measure.difference),
        "beyond_noise": measure.beyond_noise,
    }


def _run_json(side: RunSide | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {
        "run_id": side.run_id,
        "observed": side.observed,
        "grade": side.grade,
        "call_duration_s": side.call_duration_s,
    }


def _transcripts_json(found: Transcripts | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "compared": found.compared,
        "differing": found.differing,
        "mean_similarity": found.mean,
        "lowest_similarity": found.lowest,
        "missing": found.missing,
        "diff": None
        if found.diff is None
        else {
            "base_run": found.diff_runs[0],
            "new_run": found.diff_runs[1],
            "lines": list(found.diff.lines),
            "omitted_lines": found.diff.omitted,
        },
    }


def scenario_comparison_json(comparison: ScenarioComparison) -> dict[str, Any]:
    """The baseline diff as a JSON-ready dict (schema ``stressor.scenario-comparison/1``)."""

    def run(info: RunInfo, said: SaidState) -> dict[str, Any]:
        return {
            "profile": info.profile,
            "started_at": info.started_at,
            "elapsed_s": info.elapsed_s,
            "planned": info.planned,
            "interrupted": info.interrupted,
            "calls_log": said.path,
            "transcripts_problem": said.problem,
            "transcripts_caveat": said.caveat,
        }

    return {
        "schema": SCHEMA,
        "regressed": comparison.regressed,
        "base": run(comparison.base, comparison.base_said),
        "new": run(comparison.new, comparison.new_said),
        "rule": {"grade_drop": comparison.grade_drop, "confidence": CONFIDENCE, "statistic": "median"},
        "notes": list(comparison.notes),
        "scenarios": [
            {
                "scenario": s.name,
                "change": str(s.change),
                "regressed": s.regressed,
                "reasons": list(s.reasons),
                "expected_outcome": s.expected,
                "verdict": {"base": s.base_verdict, "new": s.new_verdict},
                "outcome_changes": [{"base": b, "new": n, "runs": c} for b, n, c in s.outcomes],
                "grade": _shift_json(s.grade),
                "call_duration_s": _shift_json(s.duration),
                "transcripts": _transcripts_json(s.transcripts),
                "unpaired": {"base": s.unpaired_base, "new": s.unpaired_new},
                "runs": [
                    {
                        "variant": p.variant,
                        "k": p.k,
                        "base": _run_json(p.base),
                        "new": _run_json(p.new),
                        "grade_delta": p.grade_delta,
                        "call_duration_delta_s": p.duration_delta,
                        "similarity": p.similarity,
                    }
                    for p in s.pairs
                ],
            }
            for s in comparison.scenarios
        ],
    }
